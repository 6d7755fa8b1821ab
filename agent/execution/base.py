"""The execution interface every backend implements: start a tool, wait for it, stop it.

A backend turns a `LaunchSpec` into a `Running` handle. `wait` enforces the time limit
itself; `interrupt` asks the whole tool to stop (SIGTERM or the scheduler's equivalent), waits
out the grace period, then kills it; it is idempotent and remembers the first reason. Tools
outlive the agent: `adopt` re-attaches to one after a restart, `detach` leaves one running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.errors import AgentError


class LaunchError(AgentError):
    """The tool could not be started."""


@dataclass(frozen=True)
class LaunchSpec:
    """What to run and under which limits."""

    argv: list[str]
    cwd: Path
    env: Mapping[str, str]
    log_path: Path  # stdout and stderr, appended
    timeout: float  # seconds of wall time before the tool is stopped
    grace: float  # seconds between the polite stop and the kill
    status_dir: Path  # where the tool's supervisor records its pid and exit status
    # A variable (name, value) in `env` unique to this job: what the tool left is found by it
    # when the supervisor died without sweeping up (local tools only).
    marker: tuple[str, str] | None = None


@dataclass(frozen=True)
class ExitInfo:
    """How the tool ended."""

    exit_code: int | None  # None when a signal ended it
    signal: int | None
    timed_out: bool
    interrupted: str | None  # the reason given to `interrupt`, if it was called
    wall_time: float
    detail: str | None = None  # how the backend explains the end (a scheduler's state), if it can
    cpu_seconds: float | None = None  # user + system time of the tool and what it waited for
    peak_rss_kb: int | None = None  # the largest resident set among them

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.interrupted is None


class StopOnce:
    """`interrupt` for a backend: remember the first reason, run `_stop` once, however asked.

    Subclasses set `_interrupted = None` and `_stopping = None` and implement `_stop`.
    """

    _interrupted: str | None
    _stopping: asyncio.Task[None] | None

    @property
    def ident(self) -> str:
        raise NotImplementedError

    async def interrupt(self, reason: str) -> None:
        if self._interrupted is None:
            self._interrupted = reason
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(), name=f"stop {self.ident}")
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        raise NotImplementedError


class Running(Protocol):
    """A started tool."""

    @property
    def ident(self) -> str:
        """How the backend names it (a pid, a Slurm job id), for logs and records."""
        ...

    @property
    def pid(self) -> int | None:
        """The local process that leads the tool, or None when it is not a local process."""
        ...

    @property
    def handle(self) -> int | None:
        """What a restarted agent re-attaches by (a pid, a Slurm job id), journaled at start."""
        ...

    async def wait(self) -> ExitInfo:
        """Wait for the end, stopping the tool when its time limit passes."""
        ...

    async def interrupt(self, reason: str) -> None:
        """Stop the tool: polite signal, grace period, then kill (idempotent)."""
        ...

    def detach(self) -> None:
        """Leave the tool running when the wait is cancelled (a later agent re-attaches)."""
        ...


class Backend(Protocol):
    """Starts tools."""

    async def start(self, spec: LaunchSpec) -> Running:
        """Start the tool; LaunchError when it cannot start."""
        ...

    def adopt(self, pid: int, spec: LaunchSpec) -> Running:
        """Re-attach to a tool an earlier run of the agent started (`pid` leads it)."""
        ...
