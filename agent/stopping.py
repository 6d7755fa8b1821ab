"""Stopping as a request in two stages; the signal handler only records it.

The first request drains: claim nothing new, let the running job finish. The second forces:
running jobs are cancelled (they report `agent_stopping`) and the daemon exits. `request` is
a plain method, so tests and the CLI's signal handlers call the same thing.

`detach` is the third way, for upgrades: claim nothing new, stop working the running jobs at
once without ending them, and exit; their tools run on and the next start re-attaches.
"""

from __future__ import annotations

import asyncio

import structlog

log = structlog.get_logger(__name__)


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
