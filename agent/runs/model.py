"""What a run record holds, and the pure views of it (CSV steps, plot data, input summaries).

`Run` is one job run: its steps (phases with start and end), its log entries (level,
message, tags and progress, as the tool reported them), and, kept apart because there may
be many, its resource samples (CPU and memory of the tool's process tree over time).
`RunFilter` is what a listing asks for; `RunFilter.parse` checks a query given as strings
(the HTTP API's), and says what is wrong with it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_PAGE = 1000  # runs in one page of a listing


@dataclass(frozen=True)
class Step:
    phase: str
    started: float
    ended: float | None


@dataclass(frozen=True)
class Entry:
    """One log entry a tool reported (Port's node-run log shape: level, message, tags)."""

    time: float
    level: str  # DEBUG, INFO, WARN or ERROR
    message: str
    tags: dict[str, Any] = field(default_factory=dict)
    progress: float | None = None  # percent done, when the entry said


@dataclass(frozen=True)
class Sample:
    """The tool's process tree at one moment."""

    time: float
    cpu_percent: float  # of one core, since the previous sample
    rss_kb: int  # resident memory of every process in the tree


@dataclass(frozen=True)
class Run:
    """One job run as recorded."""

    id: str
    job_id: str
    agent_id: str
    function: str
    module: str
    module_version: str
    started: float
    ended: float | None
    status: str  # the job's last phase while it runs; its final status after
    reason: str | None
    message: str | None
    exit_code: int | None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float | None = None  # the tool's wall time
    cpu_s: float | None = None  # its CPU time (user + system), with what it waited for
    peak_rss_kb: int | None = None  # its largest resident set
    progress: float | None = None  # the last progress the tool reported, percent
    steps: list[Step] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing shows, newest first, one page of them."""

    status: str | None = None  # exactly this status (Completed, Failed, Running, ...)
    keyword: str | None = None  # in the function, module, job id or run id
    since: float | None = None  # started at or after (epoch seconds)
    until: float | None = None  # started before
    limit: int = 50
    page: int = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> RunFilter:
        """A filter from query strings; ValueError saying which one is wrong and why."""
        unknown = set(query) - {"status", "keyword", "since", "until", "limit", "page"}
        if unknown:
            msg = f"unknown query parameter {sorted(unknown)[0]!r}"
            raise ValueError(msg)
        return cls(
            status=query.get("status") or None,
            keyword=query.get("keyword") or None,
            since=_time(query, "since"),
            until=_time(query, "until"),
            limit=_whole(query, "limit", 50, MAX_PAGE),
            page=_whole(query, "page", 1, None),
        )


def _whole(query: Mapping[str, str], name: str, default: int, top: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1 or (top is not None and int(raw) > top):
        most = f" to {top}" if top is not None else " or more"
        msg = f"{name} must be a whole number from 1{most}, not {raw!r}"
        raise ValueError(msg)
    return int(raw)


def _time(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        msg = f"{name} must be an ISO 8601 time or epoch seconds, not {raw!r}"
        raise ValueError(msg) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def describe_inputs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """What a record keeps of the tool's inputs: names and types, files' sizes and shas.

    A credential (auth_info) is recorded by name and type only, a parameter by its JSON size.
    """
    described: list[dict[str, Any]] = []
    for name, item in document.items():
        kind, value = item.get("type"), item.get("value")
        entry: dict[str, Any] = {"name": name, "type": kind}
        if kind in ("user_model", "user_link") and isinstance(value, str):
            path = Path(value)
            if path.is_file():
                entry |= {"file": path.name, "size": path.stat().st_size,
                          "sha256": _sha256(path)}  # fmt: skip
        elif kind == "parameter":
            entry["size"] = len(json.dumps(value))
        described.append(entry)
    return described


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def steps_csv(run: Run) -> str:
    """The steps as CSV text with a header row (pure)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phase", "started", "ended", "seconds"])
    for s in run.steps:
        took = f"{s.ended - s.started:.3f}" if s.ended else ""
        writer.writerow([s.phase, iso(s.started), iso(s.ended) if s.ended else "", took])
    return out.getvalue()


def phase_durations(run: Run) -> list[dict[str, Any]]:
    """Each finished step's phase and duration in seconds (pure)."""
    return [
        {"phase": s.phase, "seconds": round(s.ended - s.started, 3)}
        for s in run.steps
        if s.ended is not None
    ]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
