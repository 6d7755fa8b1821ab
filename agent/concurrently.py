"""Run a few awaitables side by side, each cancelled if another fails, first error raised as is.

`asyncio.TaskGroup` wraps failures in an ExceptionGroup; callers here want the error their
phase defines (InvalidJob, UploadFailed, ...), so the first one is unwrapped.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")


async def all_of(coros: Iterable[Coroutine[Any, Any, T]], limit: int = 4) -> list[T]:
    """Await every coroutine, at most `limit` at a time; results in the given order."""
    gate = asyncio.Semaphore(limit)

    async def gated(coro: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await coro

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(gated(c)) for c in coros]
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return [t.result() for t in tasks]


async def both(a: Coroutine[Any, Any, T], b: Coroutine[Any, Any, U]) -> tuple[T, U]:
    """Await two coroutines side by side; the first error cancels the other and is raised."""
    try:
        async with asyncio.TaskGroup() as tg:
            ta, tb = tg.create_task(a), tg.create_task(b)
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return ta.result(), tb.result()


async def stop_beside(task: asyncio.Task[None] | None) -> BaseException | None:
    """Cancel a task that ran beside a phase and wait for its end; the error that ended it
    instead, if any (a bug to log: the phase goes on).

    `wait()` rather than `await`: a cancel of the phase itself arriving now must not be
    mistaken for the task's own, and swallowed.
    """
    if task is None:
        return None
    task.cancel()
    await asyncio.wait({task})
    return None if task.cancelled() else task.exception()


class KeyedLocks:
    """One asyncio lock per key (an address), alive while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock
