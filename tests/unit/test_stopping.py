"""Stop.before: the start's awaits give way to a stop request."""

from __future__ import annotations

import asyncio

import pytest

from agent.stopping import Stop, StoppedEarly


async def test_before_gives_the_result_when_no_stop_is_requested() -> None:
    assert await Stop().before(asyncio.sleep(0, "registered")) == "registered"


async def test_before_cancels_the_work_and_raises_when_a_stop_comes_first() -> None:
    stop = Stop()
    started, unwound = asyncio.Event(), asyncio.Event()

    async def waits_for_the_registry() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a registry that never answers
        finally:
            unwound.set()
        return "never"

    async def stop_once_started() -> None:
        await started.wait()
        stop.request("SIGTERM")

    async with asyncio.timeout(5):
        requester = asyncio.create_task(stop_once_started())
        with pytest.raises(StoppedEarly):
            await stop.before(waits_for_the_registry())
        await requester
    assert unwound.is_set()  # cleaned up before before() returned


async def test_before_passes_the_works_own_error_on() -> None:
    async def refused() -> None:
        msg = "token refused"
        raise PermissionError(msg)

    with pytest.raises(PermissionError, match="token refused"):
        await Stop().before(refused())


async def test_cancelling_the_caller_cancels_the_work_and_is_not_a_stop() -> None:
    stop = Stop()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(stop.before(work()))
    async with asyncio.timeout(5):
        await started.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert cancelled.is_set()
    assert not stop.stopping
