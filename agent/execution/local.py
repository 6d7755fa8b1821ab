"""Tools as local subprocesses, each in its own session and process group.

Stopping a tool stops its whole tree: SIGTERM to the process group and to every descendant
found (a child that moved to its own group is still found through the parent chain while the
tool lives), then after the grace period SIGKILL to all of them. When the tool exits on its own,
whatever it left running in its group is killed too, so no job leaves processes behind.
Output goes straight to the job's log file, never through the agent's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping

import psutil
import structlog

from agent.execution.base import ExitInfo, LaunchError, LaunchSpec

log = structlog.get_logger(__name__)

# Environment variables a tool never inherits from the agent (they hold its credentials).
_PRIVATE_PREFIXES = ("ISTARI_", "NOTIFY_SOCKET")


def tool_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment minus its own settings and credentials (pure)."""
    return {k: v for k, v in base.items() if not k.upper().startswith(_PRIVATE_PREFIXES)}


class LocalBackend:
    """Runs tools as child processes of the agent."""

    async def start(self, spec: LaunchSpec) -> LocalProcess:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with spec.log_path.open("ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    cwd=spec.cwd,
                    env=dict(spec.env),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,  # own session and process group
                )
        except OSError as e:
            msg = f"cannot start {spec.argv[0]}: {e.strerror or e}"
            raise LaunchError(msg) from None
        return LocalProcess(proc, spec)


class LocalProcess:
    """A running tool process and its descendants."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: LaunchSpec) -> None:
        self._proc = proc
        self._spec = spec
        self._started = time.monotonic()
        self._seen: dict[int, psutil.Process] = {}
        self._interrupted: str | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._timed_out = False

    @property
    def ident(self) -> str:
        return f"pid {self._proc.pid}"

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def wait(self) -> ExitInfo:
        try:
            async with asyncio.timeout(self._spec.timeout):
                await self._proc.wait()
        except TimeoutError:
            self._timed_out = True
            await self.interrupt("timeout")
        except asyncio.CancelledError:
            # Nobody is left to wait out a grace period: kill the tree now, then propagate.
            self._signal_tree(signal.SIGKILL)
            raise
        if self._stopping is not None:
            await self._stopping
        self._kill_group_leftovers()
        code = self._proc.returncode
        return ExitInfo(
            exit_code=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            timed_out=self._timed_out,
            interrupted=self._interrupted,
            wall_time=time.monotonic() - self._started,
        )

    async def interrupt(self, reason: str) -> None:
        if self._interrupted is None:
            self._interrupted = reason
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop(), name=f"stop {self.ident}")
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        if self._proc.returncode is not None:
            return
        self._signal_tree(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._spec.grace):
                await self._proc.wait()
        self._signal_tree(signal.SIGKILL)
        await self._proc.wait()

    def _snapshot(self) -> None:
        """Remember every live descendant (they are lost once the leader is gone)."""
        try:
            leader = psutil.Process(self._proc.pid)
            for p in [leader, *leader.children(recursive=True)]:
                self._seen.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def _signal_tree(self, sig: signal.Signals) -> None:
        self._snapshot()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)
        for p in self._seen.values():
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)  # psutil checks the pid was not reused

    def _kill_group_leftovers(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
            log.info("tool.leftovers_killed", pid=self._proc.pid)
