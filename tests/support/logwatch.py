"""Captured structlog events that a test can wait for (a deadline, never a sleep)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger


class LogWatch:
    """Every event logged while active, with a way to wait for one."""

    def __init__(self) -> None:
        self.entries: list[EventDict] = []
        self._changed = asyncio.Event()

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        # when it was logged, and at which level
        self.entries.append({**event_dict, "_at": time.monotonic(), "_level": method})
        self._changed.set()
        return event_dict

    def mark(self) -> int:
        """A position in the log: pass it as `since` to look only at what came after."""
        return len(self.entries)

    def find(self, event: str, since: int = 0, **fields: Any) -> list[EventDict]:
        """The events named `event` (from position `since`) whose fields include `fields`."""
        return [
            e
            for e in self.entries[since:]
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        ]

    async def wait_for(
        self, event: str, since: int = 0, count: int = 1, deadline: float = 15.0, **fields: Any
    ) -> EventDict:
        """The `count`th such event, waiting for it to be logged; TimeoutError after `deadline`."""
        async with asyncio.timeout(deadline):
            while len(found := self.find(event, since, **fields)) < count:
                self._changed.clear()
                await self._changed.wait()
        return found[count - 1]

    def position(self, entry: EventDict) -> int:
        """Where `entry` is in the log (to look at what came after it)."""
        return next(i for i, e in enumerate(self.entries) if e is entry) + 1


@contextmanager
def watch_logs() -> Iterator[LogWatch]:
    """Capture every structlog event, debug ones included (context merged in), for the block."""
    watch = LogWatch()
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars, watch]):
            yield watch
    finally:
        structlog.configure(wrapper_class=wrapper)


async def eventually(check: Callable[[], bool], deadline: float = 15.0) -> None:
    """Wait until `check()` holds (for states nothing announces, like a file a tool writes)."""
    async with asyncio.timeout(deadline):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)  # polling: nothing tells us when a tool writes a file


async def until(check: Callable[[], Awaitable[bool]], deadline: float = 15.0) -> None:
    """Wait until an asynchronous check holds (a state only seen by asking, over HTTP)."""
    async with asyncio.timeout(deadline):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)  # polling: the state is only seen by asking
