"""Outcome: one per job, its terminal status, and the `run --once` exit code it maps to."""

from __future__ import annotations

import pytest

from agent.jobs import errors
from agent.jobs.outcome import EXIT_CODES, Outcome, Reason, exit_code
from agent.protocol.states import TERMINAL, JobStatus


def test_every_reason_has_its_own_exit_code_and_none_is_2() -> None:
    assert set(EXIT_CODES) == set(Reason)
    codes = list(EXIT_CODES.values())
    assert len(set(codes)) == len(codes)
    assert 2 not in codes  # click's usage errors and config errors
    assert all(0 <= c < 128 for c in codes)  # never confused with death by a signal


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (Reason.COMPLETED, 0),
        (Reason.TOOL_FAILED, 1),
        (Reason.INVALID_JOB, 3),
        (Reason.MANIFEST_ERROR, 4),
        (Reason.UPLOAD_FAILED, 5),
        (Reason.TIMEOUT, 6),
        (Reason.CANCELED_BY_USER, 7),
        (Reason.AGENT_STOPPING, 8),
        (Reason.AGENT_ERROR, 9),
    ],
)
def test_exit_code_by_reason(reason: Reason, code: int) -> None:
    assert exit_code(Outcome(reason, "m")) == code


def test_no_job_exits_0() -> None:
    assert exit_code(None) == 0


def test_reasons_have_their_wire_spellings() -> None:
    assert {r.value for r in Reason} == {
        "completed", "tool_failed", "invalid_job", "manifest_error", "upload_failed",
        "canceled_by_user", "agent_stopping", "timeout", "agent_error",
    }  # fmt: skip


@pytest.mark.parametrize("reason", list(Reason))
def test_status_is_terminal_and_only_completed_is_ok(reason: Reason) -> None:
    outcome = Outcome(reason, "m", exit_code=1, signal=None)
    assert outcome.status in TERMINAL
    expected = {
        Reason.COMPLETED: JobStatus.COMPLETED,
        Reason.CANCELED_BY_USER: JobStatus.CANCELED,
    }.get(reason, JobStatus.FAILED)
    assert outcome.status is expected
    assert outcome.ok is (reason is Reason.COMPLETED)


def test_outcomes_are_frozen() -> None:
    outcome = Outcome(Reason.COMPLETED, "done")
    with pytest.raises(AttributeError):
        outcome.message = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (errors.JobError, Reason.AGENT_ERROR),
        (errors.InvalidJob, Reason.INVALID_JOB),
        (errors.ModuleUnavailable, Reason.MANIFEST_ERROR),
        (errors.ToolFailed, Reason.TOOL_FAILED),
        (errors.UploadFailed, Reason.UPLOAD_FAILED),
        (errors.JobCanceled, Reason.CANCELED_BY_USER),
    ],
)
def test_each_job_error_carries_its_reason_and_a_default_message(
    error: type[errors.JobError], reason: Reason
) -> None:
    assert error.reason is reason
    e = error(exit_code=3, signal=9)
    assert (e.exit_code, e.signal) == (3, 9)
    assert str(e) == (error.__doc__ or "").strip()
