"""Tools as local processes, each under a supervisor in its own session and process group.

Stopping a tool stops its whole tree: SIGTERM to the process group and to every descendant
found, then after the grace period SIGKILL to all of them but the supervisor, which (being the
tree's subreaper) kills whatever is left, records the exit status and exits. When the tool
exits on its own the supervisor does the same, so no job leaves processes behind, not even a
daemon that left the tool's session (supervise.py).
Output goes straight to the job's log file, never through the agent's memory.

Because the supervisor records the exit status (supervisor.py), a tool outlives the agent
that started it: `adopt` re-attaches a restarted agent to it, and `detach` lets an agent that
is stopping for an upgrade leave it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import psutil
import structlog

from agent.execution import tree
from agent.execution.base import ExitInfo, LaunchError, LaunchSpec, StopOnce
from agent.execution.supervisor import command, read_status
from agent.execution.tree import ProcessTree

log = structlog.get_logger(__name__)

# Environment variables a tool never inherits from the agent: its settings and credentials,
# and what systemd hands the agent's service alone (its credentials and state directories,
# notify socket, watchdog, journal stream: the tool's output goes to its job log).
_PRIVATE_PREFIXES = (
    "ISTARI_", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY", "WATCHDOG_", "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY",
    "INVOCATION_ID", "JOURNAL_STREAM", "LISTEN_", "MAINPID",
)  # fmt: skip
POLL_EXIT = 0.5  # seconds between looks at an adopted tool where pidfds are unavailable


def tool_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment minus its own settings and credentials (pure)."""
    return {k: v for k, v in base.items() if not k.upper().startswith(_PRIVATE_PREFIXES)}


class LocalBackend:
    """Runs tools as supervised processes of their own."""

    async def start(self, spec: LaunchSpec) -> LocalProcess:
        _check_executable(spec)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.status_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            pid = _spawn(spec)
        except OSError as e:
            msg = f"cannot start {spec.argv[0]}: {e.strerror or e}"
            raise LaunchError(msg) from None
        return LocalProcess(_Child(pid), spec)

    def adopt(self, pid: int, spec: LaunchSpec) -> LocalProcess:
        """Re-attach to a supervisor an earlier run of the agent started (not our child)."""
        return LocalProcess(_Adopted(pid), spec)


def _spawn(spec: LaunchSpec) -> int:
    """Start the supervisor in a new session; its pid.

    `posix_spawn`, not asyncio's subprocess: the agent holds no transport, pipe or object
    whose clean-up (at exit, or on Python >= 3.12 when it is garbage collected) would kill
    the supervisor, so a tool outlives an agent that exits or lets go of it.
    """
    argv = command(spec.status_dir, spec.cwd, spec.argv)
    out = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            dict(spec.env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, out, 2),
            ],
            setsid=True,  # own session and process group
        )
    finally:
        os.close(out)
        os.close(null)


def _check_executable(spec: LaunchSpec) -> None:
    """Fail the way exec would, before the supervisor hides it in an exit status of 127."""
    program = spec.argv[0]
    if os.sep in program:
        path = Path(program) if Path(program).is_absolute() else spec.cwd / program
        found = path.is_file() and os.access(path, os.X_OK)
        why = "No such file or directory" if not path.exists() else "Permission denied"
    else:
        found = shutil.which(program, path=spec.env.get("PATH", os.defpath)) is not None
        why = "not found on the tool's PATH"
    if not found:
        msg = f"cannot start {program}: {why}"
        raise LaunchError(msg)


class _Leader(Protocol):
    """The supervisor process, as far as waiting for it goes."""

    async def wait(self) -> None: ...

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def ended(self) -> bool: ...


async def exited(pid: int, ended: Callable[[], bool]) -> None:
    """Return once process `pid` has ended: a pidfd turns readable (or, without, polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfds here (old kernel, or a sandbox): look now and then
        while not ended():  # noqa: ASYNC110 (nothing to wait on but the process table)
            await asyncio.sleep(POLL_EXIT)
        return
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class _Child:
    """The supervisor this agent started: reaped here once it ends."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._rc: int | None = None
        self.usage: resource.struct_rusage | None = None  # the tree's, once reaped

    @property
    def pid(self) -> int:
        return self._pid

    async def wait(self) -> None:
        await exited(self._pid, lambda: self.ended)
        self._reap()

    def _reap(self) -> None:
        if self._rc is not None:
            return
        try:
            # wait4: the supervisor's resource use includes the tool's, which it waited for
            pid, status, usage = os.wait4(self._pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the supervisor's record says how it ended
            self._rc = 0 if self._rc is None else self._rc
            return
        if pid:
            self._rc = os.waitstatus_to_exitcode(status)
            self.usage = usage

    def reap_later(self) -> None:
        """Reap it whenever it ends, without us (a killed tree nobody waits for)."""
        threading.Thread(target=_reap_blocking, args=(self._pid,), daemon=True).start()

    @property
    def returncode(self) -> int | None:
        self._reap()
        return self._rc

    @property
    def ended(self) -> bool:
        return self.returncode is not None


def _reap_blocking(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class _Adopted:
    """A process that is not our child: its end is seen through a pidfd (or by polling)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid

    @property
    def pid(self) -> int:
        return self._pid

    async def wait(self) -> None:
        await exited(self._pid, lambda: self.ended)

    @property
    def returncode(self) -> int | None:
        return None  # only its parent learns that; the supervisor's record says it

    @property
    def ended(self) -> bool:
        try:
            return psutil.Process(self._pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True


class LocalProcess(StopOnce):
    """A running tool: its supervisor, the tool and their descendants."""

    def __init__(self, leader: _Leader, spec: LaunchSpec) -> None:
        self._leader = leader
        self._spec = spec
        self._tree = ProcessTree(leader.pid)
        self._started = time.monotonic()
        self._interrupted: str | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._timed_out = False
        self._detached = False

    @property
    def ident(self) -> str:
        return f"pid {self.pid}"

    @property
    def pid(self) -> int:
        return self._leader.pid

    @property
    def handle(self) -> int:
        return self._leader.pid

    async def wait(self) -> ExitInfo:
        try:
            async with asyncio.timeout(self._spec.timeout):
                await self._leader.wait()
        except TimeoutError:
            self._timed_out = True
            await self.interrupt("timeout")
        except asyncio.CancelledError:
            if not self._detached:
                # Nobody is left to wait out a grace period: kill the tree now, then propagate.
                # The supervisor is spared: it kills what was started since, records, exits.
                self._tree.kill_below()
                if isinstance(self._leader, _Child):
                    self._leader.reap_later()
            raise
        if self._stopping is not None:
            await self._stopping
        if self._tree.kill_group():
            log.info("tool.leftovers_killed", pid=self.pid)
        if read_status(self._spec.status_dir) is None:
            # The supervisor died without recording (killed, maybe by the tool itself), so
            # nobody swept up after the tool: find what it left by the job's own marker.
            marker = self._spec.marker
            killed = await asyncio.to_thread(tree.kill_marked, *marker) if marker else 0
            if killed:
                log.warning("tool.orphans_killed", pid=self.pid, count=killed)
        return self._exit_info()

    def detach(self) -> None:
        """Leave the tool running when our wait is cancelled (the next start adopts it)."""
        self._detached = True

    def _exit_info(self) -> ExitInfo:
        status = read_status(self._spec.status_dir)
        if status is not None:
            code, sig = status.exit_code, status.signal
        else:  # the supervisor was killed before it could record anything
            rc = self._leader.returncode
            code = rc if rc is not None and rc >= 0 else None
            sig = -rc if rc is not None and rc < 0 else None
        return ExitInfo(
            exit_code=code,
            signal=sig,
            timed_out=self._timed_out,
            interrupted=self._interrupted,
            wall_time=time.monotonic() - self._started,
            **_usage(self._leader),
        )

    async def _stop(self) -> None:
        if self._leader.ended:
            return
        self._tree.signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._spec.grace):
                await self._leader.wait()
        # The tool's tree is killed; its supervisor, spared, cleans up after it and records.
        # A supervisor that does not end then (killed and replaced by a hostile tool, say)
        # is killed with everything in its group.
        self._tree.kill_below()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(self._spec.grace, 1.0)):
                await self._leader.wait()
                return
        self._tree.signal(signal.SIGKILL)
        await self._leader.wait()


def _usage(leader: _Leader) -> dict[str, Any]:
    """CPU time and peak RSS of the supervised tree, where this agent reaped it (pure)."""
    usage = leader.usage if isinstance(leader, _Child) else None
    if usage is None:
        return {}
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_kb": usage.ru_maxrss}
