"""What a tool reports while it runs: log entries and progress, one JSON object per line.

The agent gives each tool a file (`$ISTARI_AGENT_UPDATES_FILE`); the tool appends lines such as

    {"level": "INFO", "message": "meshing done", "tags": {"cells": 120000}, "progress": 40}

`level` is DEBUG, INFO, WARN (or WARNING) or ERROR, INFO when left out; `message` a string;
`tags` an object of plain values; `progress` a percentage from 0 to 100 (null is the same as
left out). Port's node-run spelling (`logLevel`, `log`) is accepted too. A line needs a
message, a progress, or both. Anything else is not an update: `parse_update` says why, and
the agent ignores the line with a warning. This module is pure; agent/jobs/monitor.py reads
the file.
"""

from __future__ import annotations

from typing import Any

from agent import jsontext
from agent.runs.model import Entry

MAX_LINE = 16 * 1024  # bytes of one line; a longer one is not an update
MAX_MESSAGE = 4000  # characters of a message kept (the rest is cut)
MAX_TAGS = 32
LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN", "ERROR": "ERROR"}
STATUS_MESSAGE = 500  # characters of a job status message made from an update


class BadUpdate(ValueError):
    """A line of the updates file that is not an update (the message says why)."""


def parse_update(line: bytes, now: float) -> Entry:
    """The entry one line of the updates file holds, read at `now`; BadUpdate if none."""
    if len(line) > MAX_LINE:
        msg = f"longer than {MAX_LINE // 1024} KiB"
        raise BadUpdate(msg)
    try:
        obj = jsontext.loads(line)
    except jsontext.TooDeep as e:
        msg = f"not usable JSON: {e}"
        raise BadUpdate(msg) from None
    except ValueError:
        msg = "not JSON"
        raise BadUpdate(msg) from None
    if not isinstance(obj, dict):
        msg = "not a JSON object"
        raise BadUpdate(msg)
    message = _message(obj)
    progress = _progress(obj.get("progress"))
    if not message and progress is None:
        msg = "has neither a message nor a progress"
        raise BadUpdate(msg)
    return Entry(now, _level(obj), message, _tags(obj.get("tags")), progress)


def _level(obj: dict[str, Any]) -> str:
    raw = obj.get("level", obj.get("logLevel", "INFO"))
    level = LEVELS.get(raw.upper()) if isinstance(raw, str) else None
    if level is None:
        msg = "level is not one of DEBUG, INFO, WARN, ERROR"
        raise BadUpdate(msg)
    return level


def _message(obj: dict[str, Any]) -> str:
    raw = obj.get("message", obj.get("log")) or ""
    if not isinstance(raw, str):
        msg = "message is not a string"
        raise BadUpdate(msg)
    return raw[:MAX_MESSAGE]


def _tags(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    plain = (str, int, float, bool, type(None))
    if not isinstance(raw, dict) or not all(isinstance(v, plain) for v in raw.values()):
        msg = "tags is not an object of plain values (strings, numbers, booleans)"
        raise BadUpdate(msg)
    if len(raw) > MAX_TAGS:
        msg = f"more than {MAX_TAGS} tags"
        raise BadUpdate(msg)
    return dict(raw)


def _progress(raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 100:
        msg = "progress is not a number from 0 to 100"
        raise BadUpdate(msg)
    return float(raw)


def status_message(progress: float | None, message: str | None) -> str:
    """The job status message for the latest progress and message: '40% · meshing done'."""
    parts = [f"{progress:g}%"] if progress is not None else []
    parts += [message] if message else []
    text = " · ".join(parts)
    return text if len(text) <= STATUS_MESSAGE else text[: STATUS_MESSAGE - 1] + "…"
