"""Errors a job's phases raise; each carries the `Reason` its outcome records.

The runner turns every `JobError` into an `Outcome` with the error's reason and message, so a
phase says what went wrong once, where it knows, and nothing escapes the runner.
"""

from __future__ import annotations

from typing import ClassVar

from agent.errors import AgentError
from agent.jobs.outcome import Reason


class JobError(AgentError):
    """The job cannot go on."""

    reason: ClassVar[Reason] = Reason.AGENT_ERROR

    def __init__(
        self, message: str | None = None, *, exit_code: int | None = None, signal: int | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code, self.signal = exit_code, signal


class InvalidJob(JobError):
    """The job's own content is unusable (parameters, model, inputs)."""

    reason = Reason.INVALID_JOB


class ModuleUnavailable(JobError):
    """No installed module can run the job as published (missing function, variant, config)."""

    reason = Reason.MANIFEST_ERROR


class ToolFailed(JobError):
    """The tool ran but did not produce a usable result."""

    reason = Reason.TOOL_FAILED


class ToolTimedOut(JobError):
    """The tool ran past the process timeout and was stopped."""

    reason = Reason.TIMEOUT


class UploadFailed(JobError):
    """The outputs could not be uploaded to the registry."""

    reason = Reason.UPLOAD_FAILED


class JobCanceled(JobError):
    """A user canceled the job."""

    reason = Reason.CANCELED_BY_USER


class AgentStopping(JobError):
    """The agent was told to stop now and stopped the job."""

    reason = Reason.AGENT_STOPPING
