"""Why a job ended, decided in one place: what happened to it in, its one `Outcome` out (pure).

The runner notes what happens as it happens (`Ending`): a stop asked of the job and why, how
its tool ended, what ended its phases early, what it uploaded. `settle` decides from all of
it at once, as buildkite's job runner notes a cancel or an agent stop when it is asked and
settles the exit's reason once, after the process has ended. The first of these that holds
decides:

1. the job's own task was cancelled (a forced stop that found no tool to stop, or a detach):
   `agent_stopping`, "the agent stopped before the job finished";
2. a user canceled it: `canceled_by_user`, whatever the tool or the phases did next (a tool
   killed by the cancel, or an upload the registry refused because of it, is the cancel);
3. its tool did not succeed: `timeout` when it ran past its limit, else why the agent stopped
   it (a user's cancel, its work directory full: `tool_failed`, the agent stopping), else
   `tool_failed` with its exit code or signal; messages end with the last lines it printed;
4. a phase failed: a `JobError` says its own reason; a registry that could not be used, a
   disk error or a bug (`is_bug`) is `agent_error`;
5. every phase ran: `completed`, naming the outputs.
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass

from agent.execution.base import ExitInfo
from agent.jobs.errors import JobError
from agent.jobs.execute import ExecutionResult
from agent.jobs.outcome import Outcome, Reason
from agent.jobs.upload import UploadedOutputs
from agent.registry.errors import RegistryError

WORK_DIR_FULL = "work_dir_full"  # why the agent stopped a tool whose work directory outgrew it
STOPPED = Outcome(Reason.AGENT_STOPPING, "the agent stopped before the job finished")
CANCELED = "canceled by a user"


@dataclass
class Ending:
    """What happened to one job, noted by its runner as it happens."""

    stop: Reason | None = None  # the first stop asked of it: canceled_by_user, agent_stopping
    tool: ExecutionResult | None = None  # how its tool ended, when this run of the agent saw it
    error: BaseException | None = None  # what ended its phases early (a cancel of its task too)
    uploaded: UploadedOutputs | None = None  # its outputs, once every phase ran

    def asked_to_stop(self, reason: Reason) -> None:
        """A stop was asked; the first one's reason is the one that counts."""
        self.stop = self.stop or reason


def settle(end: Ending) -> Outcome:
    """The job's one outcome (the order of precedence is the module's docstring)."""
    if end.error is not None and not isinstance(end.error, Exception):
        return STOPPED
    if end.stop is Reason.CANCELED_BY_USER:
        return Outcome(Reason.CANCELED_BY_USER, CANCELED)
    if end.tool is not None and not end.tool.succeeded:
        return _tool_failed(end.tool)
    if end.error is not None:
        return _failed(end.error)
    if end.uploaded is not None:
        names = ", ".join(f"{u.name} ({u.kind} {u.resource_id})" for u in end.uploaded.outputs)
        return Outcome(Reason.COMPLETED, f"outputs: {names or 'none'}", exit_code=0)
    return STOPPED  # nothing ended it yet: its task was stopped before it could say


def is_bug(error: Exception) -> bool:
    """Whether `error` is not one a phase expects: a bug (it fails the job, logged in full)."""
    return not isinstance(error, JobError | RegistryError | OSError)


def _tool_failed(tool: ExecutionResult) -> Outcome:
    info, printed = tool.exit, _last_output(tool.tail)
    if info.timed_out:
        limit = f"the process timeout ({tool.process_timeout:g} s)"
        reason = Reason.TIMEOUT
        msg = f"the tool ran past {info.detail or limit} and was stopped{printed}"
    elif info.interrupted == Reason.CANCELED_BY_USER:
        reason, msg = Reason.CANCELED_BY_USER, CANCELED
    elif info.interrupted == WORK_DIR_FULL:
        reason, mb = Reason.TOOL_FAILED, tool.max_work_dir_mb
        msg = f"the tool's work directory grew past max_work_dir_mb ({mb:g} MB) and the tool "
        msg += f"was stopped{printed}"
    elif info.interrupted == Reason.AGENT_STOPPING:
        reason = Reason.AGENT_STOPPING
        msg = "the agent was stopped while the tool ran; submit the job again"
    else:
        reason, msg = Reason.TOOL_FAILED, f"the tool {describe_exit(info)}{printed}"
    return Outcome(reason, msg, info.exit_code, info.signal)


def _failed(error: Exception) -> Outcome:
    if isinstance(error, JobError):
        return Outcome(error.reason, str(error), error.exit_code, error.signal)
    if isinstance(error, RegistryError):
        return Outcome(Reason.AGENT_ERROR, f"the registry could not be used: {error}")
    if isinstance(error, OSError):
        return Outcome(Reason.AGENT_ERROR, f"the agent could not use its disk: {error}")
    return Outcome(Reason.AGENT_ERROR, f"internal error: {type(error).__name__}: {error}")


def describe_exit(info: ExitInfo) -> str:
    """'exited with code 3' or 'was killed by SIGSEGV'."""
    if info.detail is not None and info.interrupted is None:
        return info.detail  # the backend knows better (a scheduler's end state)
    if info.signal is not None:
        try:
            name = signals.Signals(info.signal).name
        except ValueError:
            name = f"signal {info.signal}"
        return f"was killed by {name}"
    if info.interrupted is not None:
        return f"was stopped ({info.interrupted})"
    if info.exit_code is None:
        return "ended while the agent was away without recording an exit status (it was killed)"
    return f"exited with code {info.exit_code}"


def _last_output(tail: str) -> str:
    return f"; last output:\n{tail}" if tail else "; it printed nothing"
