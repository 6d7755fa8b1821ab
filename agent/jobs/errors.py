"""Errors a job's phases raise; each carries the `Reason` its outcome records.

A phase says what went wrong once, where it knows; the runner notes the error and `settle`
(ending.py) makes it the job's `Outcome` with the error's reason and message, so nothing
escapes the runner. How a tool ended is not an error: `settle` judges it from its exit.
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


class InputsDoNotFit(JobError):
    """An input could not be written to the local disk (it is full): the machine's problem,
    not the job's."""

    reason = Reason.AGENT_ERROR


class ModuleUnavailable(JobError):
    """No installed module can run the job as published (missing function, variant, config)."""

    reason = Reason.MANIFEST_ERROR


class ToolFailed(JobError):
    """The tool ran but did not produce a usable result."""

    reason = Reason.TOOL_FAILED


class UploadFailed(JobError):
    """The outputs could not be uploaded to the registry."""

    reason = Reason.UPLOAD_FAILED


class JobCanceled(JobError):
    """A user canceled the job."""

    reason = Reason.CANCELED_BY_USER
