"""Why a job ended: `settle` decides once from what happened, in its order of precedence."""

from __future__ import annotations

import asyncio
import signal

import pytest

from agent.execution.base import ExitInfo
from agent.jobs.ending import WORK_DIR_FULL, Ending, is_bug, settle
from agent.jobs.errors import InvalidJob, JobCanceled, ToolFailed, UploadFailed
from agent.jobs.execute import ExecutionResult
from agent.jobs.outcome import Outcome, Reason
from agent.jobs.upload import Uploaded, UploadedOutputs
from agent.registry.errors import RegistryError

STOPPED = Outcome(Reason.AGENT_STOPPING, "the agent stopped before the job finished")
CANCELED = Outcome(Reason.CANCELED_BY_USER, "canceled by a user")


def tool(
    code: int | None = 0,
    sig: int | None = None,
    *,
    timed_out: bool = False,
    interrupted: str | None = None,
    detail: str | None = None,
    tail: str = "",
) -> ExecutionResult:
    info = ExitInfo(code, sig, timed_out, interrupted, wall_time=1.0, detail=detail)
    return ExecutionResult(info, tail, process_timeout=600, max_work_dir_mb=50)


UPLOADED = UploadedOutputs([Uploaded("report", "artifact", "a-1", "report.txt")], log=None)


# 5. every phase ran


def test_a_job_whose_phases_all_ran_completed_naming_its_outputs() -> None:
    outcome = settle(Ending(tool=tool(0), uploaded=UPLOADED))
    assert outcome == Outcome(Reason.COMPLETED, "outputs: report (artifact a-1)", exit_code=0)


def test_a_job_with_no_outputs_says_none() -> None:
    outcome = settle(Ending(uploaded=UploadedOutputs([], log=None)))  # resumed at its upload
    assert outcome == Outcome(Reason.COMPLETED, "outputs: none", exit_code=0)


def test_nothing_noted_is_a_job_stopped_before_it_finished() -> None:
    assert settle(Ending()) == STOPPED


# 4. a phase failed


@pytest.mark.parametrize(
    ("error", "reason", "message"),
    [
        (InvalidJob("bad parameters"), Reason.INVALID_JOB, "bad parameters"),
        (UploadFailed("refused"), Reason.UPLOAD_FAILED, "refused"),
        (JobCanceled("canceled by a user"), Reason.CANCELED_BY_USER, "canceled by a user"),
        (RegistryError("503"), Reason.AGENT_ERROR, "the registry could not be used: 503"),
        (OSError("disk full"), Reason.AGENT_ERROR, "the agent could not use its disk: disk full"),
        (KeyError("x"), Reason.AGENT_ERROR, "internal error: KeyError: 'x'"),
    ],
)
def test_a_phase_error_says_why(error: Exception, reason: Reason, message: str) -> None:
    assert settle(Ending(error=error)) == Outcome(reason, message)


def test_a_job_error_keeps_the_tools_exit_code_and_signal() -> None:
    outcome = settle(Ending(error=ToolFailed("no output file", exit_code=3, signal=None)))
    assert (outcome.reason, outcome.exit_code) == (Reason.TOOL_FAILED, 3)


def test_only_unexpected_errors_are_bugs() -> None:
    assert is_bug(KeyError("x"))
    assert not any(is_bug(e) for e in (InvalidJob(), RegistryError("x"), OSError("x")))


# 3. the tool did not succeed


def test_a_tool_that_exited_non_zero_failed_with_its_last_output() -> None:
    outcome = settle(Ending(tool=tool(3, tail="boom")))
    assert outcome == Outcome(
        Reason.TOOL_FAILED, "the tool exited with code 3; last output:\nboom", exit_code=3
    )


def test_a_tool_killed_by_a_signal_that_printed_nothing() -> None:
    outcome = settle(Ending(tool=tool(None, int(signal.SIGSEGV))))
    assert outcome.message == "the tool was killed by SIGSEGV; it printed nothing"
    assert (outcome.reason, outcome.signal) == (Reason.TOOL_FAILED, signal.SIGSEGV)


def test_a_tool_past_its_time_limit_timed_out_naming_the_limit() -> None:
    outcome = settle(Ending(tool=tool(None, 15, timed_out=True, interrupted="timeout")))
    assert outcome.reason is Reason.TIMEOUT
    assert outcome.message == (
        "the tool ran past the process timeout (600 s) and was stopped; it printed nothing"
    )


def test_a_backends_own_words_for_the_limit_are_used() -> None:
    outcome = settle(Ending(tool=tool(None, timed_out=True, detail="its Slurm time limit")))
    assert outcome.message.startswith("the tool ran past its Slurm time limit and was stopped")


def test_a_time_limit_wins_over_the_reason_the_tool_was_stopped_for() -> None:
    timed_out = tool(None, 15, timed_out=True, interrupted=Reason.AGENT_STOPPING.value)
    assert settle(Ending(tool=timed_out)).reason is Reason.TIMEOUT


def test_a_tool_stopped_for_a_full_work_directory_failed() -> None:
    outcome = settle(Ending(tool=tool(None, 15, interrupted=WORK_DIR_FULL, tail="writing")))
    assert outcome == Outcome(
        Reason.TOOL_FAILED,
        "the tool's work directory grew past max_work_dir_mb (50 MB) and the tool was stopped"
        "; last output:\nwriting",
        signal=15,
    )


def test_a_tool_stopped_because_the_agent_stops_ends_agent_stopping() -> None:
    stopped = tool(None, 15, interrupted=Reason.AGENT_STOPPING.value)
    outcome = settle(Ending(stop=Reason.AGENT_STOPPING, tool=stopped))
    assert outcome == Outcome(
        Reason.AGENT_STOPPING,
        "the agent was stopped while the tool ran; submit the job again",
        signal=15,
    )


def test_a_tool_stopped_for_a_cancel_is_canceled_with_its_exit() -> None:
    stopped = tool(None, 15, interrupted=Reason.CANCELED_BY_USER.value)
    assert settle(Ending(tool=stopped)) == Outcome(
        Reason.CANCELED_BY_USER, "canceled by a user", signal=15
    )


def test_a_tool_that_succeeded_leaves_the_decision_to_what_came_after() -> None:
    assert settle(Ending(tool=tool(0), error=UploadFailed("refused"))).reason is (
        Reason.UPLOAD_FAILED
    )


def test_the_tools_failure_wins_over_an_error_after_it() -> None:
    assert settle(Ending(tool=tool(1), error=OSError("x"))).reason is Reason.TOOL_FAILED


# 2. a user's cancel


@pytest.mark.parametrize(
    "ending",
    [
        Ending(stop=Reason.CANCELED_BY_USER),  # the phases were stopped where they were
        Ending(stop=Reason.CANCELED_BY_USER, tool=tool(None, 15, interrupted="canceled_by_user")),
        Ending(stop=Reason.CANCELED_BY_USER, tool=tool(1)),  # it failed as it was stopped
        Ending(stop=Reason.CANCELED_BY_USER, error=UploadFailed("refused")),
        Ending(stop=Reason.CANCELED_BY_USER, error=KeyError("x")),
        Ending(stop=Reason.CANCELED_BY_USER, tool=tool(0), uploaded=UPLOADED),  # too late
    ],
)
def test_a_users_cancel_wins_over_whatever_the_tool_or_phases_did(ending: Ending) -> None:
    assert settle(ending) == CANCELED  # no exit code: the cancel, not the tool, ended it


def test_the_first_stop_asked_is_the_one_that_counts() -> None:
    ending = Ending()
    ending.asked_to_stop(Reason.AGENT_STOPPING)
    ending.asked_to_stop(Reason.CANCELED_BY_USER)
    assert ending.stop is Reason.AGENT_STOPPING
    stopped = tool(None, 15, interrupted=Reason.AGENT_STOPPING.value)
    ending.tool = stopped
    assert settle(ending).reason is Reason.AGENT_STOPPING


# 1. the job's task was cancelled


@pytest.mark.parametrize(
    "ending",
    [
        Ending(error=asyncio.CancelledError()),
        Ending(stop=Reason.AGENT_STOPPING, error=asyncio.CancelledError()),
        Ending(stop=Reason.CANCELED_BY_USER, error=asyncio.CancelledError()),
        Ending(tool=tool(1), error=asyncio.CancelledError()),
    ],
)
def test_a_cancelled_task_is_the_agent_stopping_before_the_job_finished(ending: Ending) -> None:
    assert settle(ending) == STOPPED
