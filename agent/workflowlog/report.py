"""What `istari-agent record` prints: outcomes of sending, the outbox listing, exit codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.workflowlog.deliver import Sent
from agent.workflowlog.model import Record

KEPT = 75  # EX_TEMPFAIL: not recorded yet, kept for `record --retry`


def exit_code(delivered: bool, command_code: int | None = None) -> int:
    """The exit code of `record`: a wrapped command's failure first, then delivery."""
    if command_code:
        return command_code
    return 0 if delivered else KEPT


def as_json(sent: Sent) -> dict[str, Any]:
    """One record's outcome for `--json`."""
    r = sent.record
    return {
        "record_id": r.id,
        "delivered": sent.error is None,
        "entry_id": r.entry_id if sent.error is None else None,
        "system_id": r.system_id,
        "status": r.status,
        "title": r.title,
        "output_ids": [o.output_id for o in r.outputs if o.output_id is not None],
        "error": sent.error,
    }


def describe_sent(sent: Sent, outbox: str) -> str:
    """One record's outcome for a person."""
    r = sent.record
    if sent.error is None:
        return (
            f"recorded workflow log entry {r.entry_id} in system {r.system_id} "
            f"({r.status}, {_outputs(r)})"
        )
    return (
        f"not recorded yet: {sent.error}\n"
        f"the record is kept in {outbox}/{r.id}; `istari-agent record --retry` will send it "
        f"(`istari-agent record --drop {r.id[:12]}` forgets it)"
    )


def _outputs(r: Record) -> str:
    n = len(r.outputs)
    return f"{n} output{'s' if n != 1 else ''}"


def describe_pending(r: Record) -> str:
    """One line (two with an error) of `record --list`."""
    when = datetime.fromtimestamp(r.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
    title = f" {r.title!r}" if r.title else ""
    line = (
        f"{r.id[:12]}  {when}  {r.status:<11} {_outputs(r):<10} system {r.system_id}{title}"
        f"  ({r.attempts} attempt{'s' if r.attempts != 1 else ''})"
    )
    return line + (f"\n    last error: {r.last_error}" if r.last_error else "")
