"""Stopping as a request in two stages; the signal handler only records it.

The first request drains: claim nothing new, let the running job finish. The second forces:
running jobs are cancelled (they report `agent_stopping`) and the daemon exits. `request` is
a plain method, so tests and the CLI's signal handlers call the same thing.

`detach` is the third way, for upgrades: claim nothing new, stop working the running jobs at
once without ending them, and exit; their tools run on and the next start re-attaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Stop:
    """The daemon's stop requests."""

    def __init__(self) -> None:
        self.draining = asyncio.Event()
        self.forced = asyncio.Event()
        self.detaching = asyncio.Event()

    def request(self, why: str = "requested") -> None:
        """First call: drain. Any later call: force."""
        if not self.draining.is_set():
            log.info("agent.draining", why=why)
            self.draining.set()
        elif not self.forced.is_set():
            log.warning("agent.forcing_stop", why=why)
            self.forced.set()

    def detach(self, why: str = "requested") -> None:
        """Exit now, leaving running tools to the next start of the agent."""
        if not self.detaching.is_set():
            log.info("agent.detaching", why=why)
            self.detaching.set()
            self.draining.set()

    @property
    def stopping(self) -> bool:
        return self.draining.is_set()

    async def before(self, work: Awaitable[T]) -> T:
        """`work`'s result, unless a stop is requested first: then `work` is cancelled and
        StoppedEarly raised. For the start, which may wait out a retry budget on an unreachable
        registry: a stop then ends the agent at once instead of after the budget."""
        task = asyncio.ensure_future(work)
        requested = asyncio.ensure_future(self.draining.wait())
        try:
            await asyncio.wait({task, requested}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            requested.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # let it unwind before the caller cleans up
        if task.cancelled() and self.draining.is_set():
            raise StoppedEarly
        return task.result()


class StoppedEarly(Exception):
    """A stop was requested before the agent had started."""
