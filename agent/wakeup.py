"""One wake-up event for the dispatch loop: the poll timer and push messages both set it."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """A latch the dispatch loop sleeps on between polls."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the dispatch loop now (safe to call any number of times)."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Sleep until woken or `seconds` pass; True when woken. Clears the latch."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken
