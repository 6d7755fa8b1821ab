"""Turning what the user asked to record into a `Record` in the outbox, before anything is sent.

Each output is checked (a regular file we can read) and hashed under a fresh salt now, so
the record names exactly the bytes it will send; its properties blob is written beside the
record. `--config` pairs become one more output, `configuration.json`.
"""

from __future__ import annotations

import json
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import AgentError
from agent.protocol.content import digest_file, properties_document
from agent.workflowlog.model import Blob, Output, Record
from agent.workflowlog.outbox import Outbox

CONFIG_NAME = "configuration.json"
LOG_NAME = "command.log"


class RecordRefused(AgentError):
    """The run cannot be recorded as asked."""


@dataclass(frozen=True)
class Run:
    """What to record: where, how it ended, and what it produced."""

    system_id: str
    status: str
    title: str | None = None
    configuration_id: str | None = None
    branch_id: str | None = None
    branchless: bool = False
    outputs: tuple[Path, ...] = ()
    config: dict[str, str] = field(default_factory=dict)
    log: Path | None = None  # a wrapped command's log, already in the record's directory


def new_record_id() -> str:
    """A fresh record id."""
    return uuid.uuid4().hex


def output_problem(path: Path) -> str | None:
    """Why `path` cannot be an output (missing, not a file, unreadable), or None."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return f"{path}: not a regular file"
        with path.open("rb"):
            pass
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    return None


def present_outputs(paths: tuple[Path, ...]) -> tuple[tuple[Path, ...], list[str]]:
    """The outputs that can be sent (absolute), and why each other one cannot."""
    problems = [(path, output_problem(path)) for path in paths]
    usable = tuple(path.resolve() for path, problem in problems if problem is None)
    return usable, [problem for _, problem in problems if problem is not None]


def check_outputs(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    """The outputs as absolute paths; RecordRefused naming every one that cannot be sent."""
    usable, problems = present_outputs(paths)
    if problems:
        raise RecordRefused("cannot record these outputs: " + "; ".join(problems))
    return usable


def _blob(path: Path, salt: str | None = None) -> Blob:
    d = digest_file(path, salt)
    return Blob(sha=d.sha, salt=d.salt, size=d.size)


def describe(outbox: Outbox, record_id: str, index: int, path: Path, *, kept: bool) -> Output:
    """Hash one output and write its properties blob into the record's directory."""
    mtime_ns = path.stat().st_mtime_ns  # before hashing: a change while hashing shows later
    content = _blob(path)
    props = properties_document(path.name, content.size)
    props_path = outbox.write_file(record_id, f"properties-{index}.json", props)
    return Output(
        path=str(path),
        name=path.name,
        content=content,
        properties=_blob(props_path),
        mtime_ns=mtime_ns,
        kept=kept,
    )


def config_document(config: dict[str, str]) -> bytes:
    """`configuration.json`: the `--config` pairs as one JSON object, in the order given."""
    return (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build(outbox: Outbox, record_id: str, registry_url: str, run: Run, created: float) -> Record:
    """Write the record of `run` into the outbox; returns it (nothing is sent)."""
    files = [(path, False) for path in run.outputs]
    if run.config:
        files.append((outbox.write_file(record_id, CONFIG_NAME, config_document(run.config)), True))
    if run.log is not None:
        files.append((run.log, True))
    outputs = tuple(
        describe(outbox, record_id, i, path, kept=kept) for i, (path, kept) in enumerate(files)
    )
    record = Record(
        id=record_id,
        created=created,
        registry_url=registry_url.rstrip("/"),
        system_id=run.system_id,
        title=run.title,
        status=run.status,
        configuration_id=run.configuration_id,
        branch_id=run.branch_id,
        branchless=run.branchless,
        outputs=outputs,
    )
    outbox.save(record)
    return record
