"""One wake-up latch for the dispatch loop, set by the poll timer, push notices, ended jobs."""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.protocol.push import Offer


class Wake(StrEnum):
    """Why the dispatch loop looked for work (logged with each claim)."""

    START = "start"  # the agent just started
    POLL = "poll"  # the poll timer ran out
    PUSH = "push"  # a notice said a job may be available
    PUSH_CONNECTED = "push_connected"  # (re)connected to the broker: catch up once
    PUSH_LOST = "push_lost"  # push became unreliable: poll now, then often
    REGISTRY_ONLINE = "registry_online"  # the registry's publisher is back: catch up once
    JOB_FINISHED = "job_finished"  # a slot came free
    MODULES = "modules"  # the modules served changed (a function may have been added)
    MORE = "more"  # the last look found work: look again at once
    RELOADED = "reloaded"  # the configuration was reloaded: slots, pools, intervals may differ


class Wakeup:
    """A latch the dispatch loop sleeps on between looks; remembers the first reason, and the
    job offered when that one wake-up was a notice offering exactly one job."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reason = Wake.POLL
        self._offer: Offer | None = None
        self.offer: Offer | None = None  # what the last `wait` was woken with, if anything

    def set(self, reason: Wake, offer: Offer | None = None) -> None:
        """Wake the dispatch loop now (any number of calls before it wakes count as one; when
        there were several, no single offer stands: the loop lists the jobs)."""
        if not self._event.is_set():
            self._reason, self._offer = reason, offer
            self._event.set()
        else:
            self._offer = None

    async def wait(self, seconds: float | None) -> Wake:
        """Sleep until woken or `seconds` pass (None: no timer); why it woke. Clears the latch."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        woken = self._event.is_set()
        reason = self._reason if woken else Wake.POLL
        self.offer, self._offer = (self._offer if woken else None), None
        self._event.clear()
        return reason
