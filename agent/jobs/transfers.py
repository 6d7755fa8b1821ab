"""Progress of a phase's transfers, for people: bytes, rate and time left, in the job's status
message and in the run record.

The Validating phase (input downloads) and the Uploading phase (outputs) each hold one
`TransferProgress`: `expect(size)` as a file's transfer starts, then the transfer functions
call `add(n)` for every `n` bytes that moved (their `progress` callback). Nothing is said of a
phase whose transfers end within `progress_report_interval`; past it, the news is told at most
that often and only when it changed: to the registry as a self-move of the phase with a message
(as a tool's progress is told in Running), once the registry has taken the phase, and to the
run record as an entry whose tags hold the figures. A report that fails is dropped (the next
one carries newer news). A phase that was reported ends with one entry saying how much moved
and how fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import structlog

from agent.concurrently import stop_beside
from agent.humanize import human_bytes, human_seconds
from agent.registry.errors import RegistryError
from agent.runs.model import Entry

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Tally:
    """What a phase's transfers have moved so far."""

    done: int  # bytes moved
    total: int  # bytes expected (the sizes of the files started so far)
    seconds: float  # since the first file started

    @property
    def rate(self) -> float:
        """Bytes per second so far (0 before any time has passed)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def message(self, verb: str) -> str:
        """'uploading 1.2 of 3.0 GiB (40%) at 250.0 MiB/s, about 8 s left'."""
        shown = f"{verb} {human_bytes(self.done)} of {human_bytes(self.total)}"
        if self.total > 0:
            shown += f" ({100 * min(self.done, self.total) // self.total}%)"
        if self.rate > 0:
            shown += f" at {human_bytes(self.rate)}/s"
            if self.total > self.done:
                shown += f", about {human_seconds((self.total - self.done) / self.rate)} left"
        return shown

    def summary(self, past: str) -> str:
        """'uploaded 3.0 GiB in 12 s (256.0 MiB/s)'."""
        return (
            f"{past} {human_bytes(self.done)} in {human_seconds(self.seconds)}"
            f" ({human_bytes(self.rate)}/s)"
        )

    def tags(self) -> dict[str, str | int | float | bool | None]:
        """The figures, as the run record's entry tags."""
        return {
            "source": "agent",
            "bytes": self.done,
            "total_bytes": self.total,
            "bytes_per_second": round(self.rate),
            "seconds": round(self.seconds, 3),
        }


Tell = Callable[[str], Awaitable[None]]  # the job's status message, as a self-move of the phase
Note = Callable[[Entry], None]  # the run record's entry


class TransferProgress:
    """The transfers of one phase: `async with` around it, `expect` and `add` inside.

    `verb` and `past` name the transfer ('downloading inputs' / 'downloaded inputs');
    `acknowledged()` says whether the registry has taken the phase yet (a message on a phase
    it has not taken would be refused).
    """

    def __init__(
        self,
        verb: str,
        past: str,
        *,
        every: float,
        tell: Tell,
        note: Note,
        acknowledged: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb, self.past = verb, past
        self._every = every
        self._tell, self._note, self._acknowledged = tell, note, acknowledged
        self._clock = clock
        self._started: float | None = None
        self._done = 0
        self._total = 0
        self._told: str | None = None
        self._reported = False
        self._task: asyncio.Task[None] | None = None

    def expect(self, size: int) -> None:
        """A file of `size` bytes starts to move."""
        if self._started is None:
            self._started = self._clock()
        self._total += max(0, size)

    def add(self, n: int) -> None:
        """`n` more bytes moved (the transfer functions' `progress` callback)."""
        if self._started is None:
            self._started = self._clock()
        self._done += n

    def tally(self) -> Tally:
        """What has moved so far."""
        started = self._started if self._started is not None else self._clock()
        return Tally(self._done, max(self._total, self._done), self._clock() - started)

    async def __aenter__(self) -> TransferProgress:
        if self._every > 0:
            self._task = asyncio.create_task(self._report(), name=f"progress {self.verb}")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if (bug := await stop_beside(self._task)) is not None:
            log.error("job.progress_failed", error=repr(bug))  # the phase goes on
        if self._reported and e is None:
            tally = self.tally()
            self._note(Entry(time.time(), "INFO", tally.summary(self.past), tally.tags()))

    async def _report(self) -> None:
        """Every `every` seconds: the news, when there is some and it changed."""
        while True:
            await asyncio.sleep(self._every)
            if self._started is None:
                continue  # nothing has started to move yet
            tally = self.tally()
            text = tally.message(self.verb)
            if text == self._told:
                continue
            self._reported = True
            self._note(Entry(time.time(), "INFO", text, tally.tags()))
            if not self._acknowledged():
                continue  # told once the registry has taken the phase
            try:
                await self._tell(text)
            except RegistryError as e:
                log.info("job.progress_unreported", error=str(e))
                continue
            self._told = text
