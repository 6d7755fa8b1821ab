"""How a job ended: exactly one `Outcome` per job, and the exit code it maps to (pure).

Refusals and failures are outcomes, not escaping exceptions, so the runner always has one
thing to record and report last.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.protocol.states import JobStatus


class Reason(StrEnum):
    """Why a job ended (a closed set; each has a `run --once` exit code)."""

    COMPLETED = "completed"
    TOOL_FAILED = "tool_failed"
    INVALID_JOB = "invalid_job"
    MANIFEST_ERROR = "manifest_error"
    UPLOAD_FAILED = "upload_failed"
    CANCELED_BY_USER = "canceled_by_user"
    AGENT_STOPPING = "agent_stopping"
    TIMEOUT = "timeout"
    AGENT_ERROR = "agent_error"


# `istari-agent run --once` exits with these. 0 is also "no job was available"; 2 is left
# to click for usage errors and to the CLI for configuration errors.
EXIT_CODES: dict[Reason, int] = {
    Reason.COMPLETED: 0,
    Reason.TOOL_FAILED: 1,
    Reason.INVALID_JOB: 3,
    Reason.MANIFEST_ERROR: 4,
    Reason.UPLOAD_FAILED: 5,
    Reason.TIMEOUT: 6,
    Reason.CANCELED_BY_USER: 7,
    Reason.AGENT_STOPPING: 8,
    Reason.AGENT_ERROR: 9,
}


@dataclass(frozen=True)
class Outcome:
    """The end of one job."""

    reason: Reason
    message: str
    exit_code: int | None = None  # the tool's, when it ran and exited
    signal: int | None = None  # the signal that ended the tool, if any

    @property
    def status(self) -> JobStatus:
        """The terminal job status to report."""
        if self.reason is Reason.COMPLETED:
            return JobStatus.COMPLETED
        if self.reason is Reason.CANCELED_BY_USER:
            return JobStatus.CANCELED
        return JobStatus.FAILED

    @property
    def ok(self) -> bool:
        return self.reason is Reason.COMPLETED


def exit_code(outcome: Outcome | None) -> int:
    """The process exit code for `run --once` (None: no job was available)."""
    return 0 if outcome is None else EXIT_CODES[outcome.reason]
