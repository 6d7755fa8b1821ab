"""Retrying registry calls at the call site: a time budget, jittered backoff, retryable only.

The client makes one request per call; a caller that can wait wraps the call here and says
its budget. Only errors the registry package marks `retryable` (unreachable, 5xx, 429) are
retried; a refusal is final at once. A caller may also bound the attempts (the official
agent's `*_retry_limit` keys): then whichever runs out first, the time or the attempts, stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

from agent.registry.errors import RegistryError

T = TypeVar("T")
log = structlog.get_logger(__name__)


def is_retryable(error: BaseException) -> bool:
    """Whether trying the same call again later may succeed (pure)."""
    return isinstance(error, RegistryError) and error.retryable


async def with_retries(
    call: Callable[[], Awaitable[T]], *, budget: float, what: str, retries: int | None = None
) -> T:
    """Await `call()` until it succeeds, a non-retryable error, `budget` seconds pass, or
    (when `retries` is given) it has been tried again `retries` times after the first attempt.
    """

    def _note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("registry.retrying", what=what, attempt=state.attempt_number, error=str(error))

    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=(
            stop_before_delay(budget)  # never sleep past the budget
            if retries is None
            else stop_before_delay(budget) | stop_after_attempt(retries + 1)
        ),
        wait=wait_exponential(multiplier=0.1, max=10.0) + wait_random(0, 0.2),
        before_sleep=_note,
        reraise=True,
    )

    async def attempt() -> T:  # tenacity awaits only what it sees is a coroutine function
        return await call()

    return await retrying(attempt)
