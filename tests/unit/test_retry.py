"""Retrying registry calls: only retryable errors, within the budget, the last error re-raised."""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from agent.registry.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    RegistryError,
    RegistryRejected,
    RegistryUnavailable,
    Throttled,
    Unauthorized,
    rejected,
)
from agent.registry.retry import is_retryable, with_retries


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RegistryUnavailable("connection refused"), True),
        (Throttled("GET", "/jobs", 429, "slow down"), True),
        (rejected("GET", "/jobs", 503, "maintenance"), True),
        (rejected("GET", "/jobs", 500, "boom"), True),
        (rejected("GET", "/jobs", 429, "slow down"), True),
        (NotFound("GET", "/jobs/1", 404, "no such job"), False),
        (Conflict("PUT", "/jobs/1", 409, "claimed"), False),
        (Unauthorized("GET", "/jobs", 401, "bad token"), False),
        (rejected("GET", "/jobs", 400, "bad request"), False),
        (rejected("GET", "/jobs", 403, "forbidden"), False),
        (IntegrityError(), False),
        (RegistryError(), False),
        (ValueError("not ours"), False),
        (TimeoutError(), False),
    ],
)
def test_is_retryable(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Unauthorized),
        (404, NotFound),
        (409, Conflict),
        (422, RegistryRejected),
    ],
)
def test_rejected_carries_the_request(status: int, kind: type[RegistryRejected]) -> None:
    error = rejected("POST", "/agents", status, "nope")
    assert type(error) is kind
    assert isinstance(error, RegistryRejected)
    assert (error.method, error.path, error.status, error.detail) == (
        "POST",
        "/agents",
        status,
        "nope",
    )
    assert str(error) == f"POST /agents -> {status}: nope"


class Flaky:
    """A registry call that fails with the given errors, in order, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_a_retryable_error_is_retried_until_the_call_succeeds() -> None:
    call = Flaky(RegistryUnavailable("down"))
    with capture_logs() as logs:
        result = await with_retries(call, budget=2.0, what="list jobs")
    assert result == "ok"
    assert call.calls == 2
    retries = [e for e in logs if e["event"] == "registry.retrying"]
    assert [(e["what"], e["attempt"], e["error"]) for e in retries] == [("list jobs", 1, "down")]


async def test_success_at_once_is_one_call() -> None:
    call = Flaky()
    assert await with_retries(call, budget=0.01, what="x") == "ok"
    assert call.calls == 1


async def test_a_refusal_is_final_at_once() -> None:
    call = Flaky(NotFound("GET", "/jobs/1", 404, "no such job"))
    with capture_logs() as logs, pytest.raises(NotFound, match="no such job"):
        await with_retries(call, budget=5.0, what="read job")
    assert call.calls == 1
    assert logs == []


async def test_a_foreign_error_is_not_retried() -> None:
    call = Flaky(ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await with_retries(call, budget=5.0, what="x")
    assert call.calls == 1


async def test_when_the_budget_runs_out_the_last_error_itself_is_raised() -> None:
    call = Flaky(*(RegistryUnavailable(f"down {i}") for i in range(1000)))
    with pytest.raises(RegistryUnavailable, match=r"^down \d+$"):
        await with_retries(call, budget=0.05, what="x")
    # The first backoff (>= 0.1 s) outlasts the budget: at most one retry.
    assert call.calls in (1, 2)


async def test_the_budget_bounds_the_time_spent_waiting() -> None:
    call = Flaky(*(RegistryUnavailable("down") for _ in range(1000)))
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable):
        await with_retries(call, budget=0.05, what="x")
    # The first backoff alone is at least 0.1 s, twice the budget: it should not be slept.
    assert time.monotonic() - started < 0.1
