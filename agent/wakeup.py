"""One wake-up latch for the dispatch loop, set by the poll timer, push notices, ended jobs."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum


class Wake(StrEnum):
    """Why the dispatch loop looked for work (logged with each claim)."""

    START = "start"  # the agent just started
    POLL = "poll"  # the poll timer ran out
    PUSH = "push"  # a notice said a job may be available
    PUSH_CONNECTED = "push_connected"  # (re)connected to the broker: catch up once
    PUSH_LOST = "push_lost"  # push became unreliable: poll now, then often
    REGISTRY_ONLINE = "registry_online"  # the registry's publisher is back: catch up once
    JOB_FINISHED = "job_finished"  # a slot came free
    MORE = "more"  # the last look found work: look again at once


class Wakeup:
    """A latch the dispatch loop sleeps on between looks; remembers the first reason."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reason = Wake.POLL

    def set(self, reason: Wake) -> None:
        """Wake the dispatch loop now (any number of calls before it wakes count as one)."""
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    async def wait(self, seconds: float | None) -> Wake:
        """Sleep until woken or `seconds` pass (None: no timer); why it woke. Clears the latch."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        reason = self._reason if self._event.is_set() else Wake.POLL
        self._event.clear()
        return reason
