"""A tool's process tree: its group leader and every descendant, signalled together.

The leader runs in its own session and process group. A signal goes to the group and to every
descendant found through the parent chain (a child that moved to its own group is still
found while the leader lives, and remembered after). psutil checks pids were not reused.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

# A recorded start time matches a live process's within this many seconds.
SAME_PROCESS = 0.01


def find(pid: int, since: float) -> psutil.Process | None:
    """The live process `pid` if it was created at `since` (else the pid was reused or is gone)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - since) > SAME_PROCESS or proc.status() == "zombie":
            return None
    except psutil.Error:
        return None
    return proc


class ProcessTree:
    """The processes of one tool, led by the process-group leader `pid`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[int, psutil.Process] = {}

    def snapshot(self) -> None:
        """Remember every live descendant (they are lost once the leader is gone)."""
        try:
            leader = psutil.Process(self.pid)
            for p in [leader, *leader.children(recursive=True)]:
                self._seen.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the group and to every descendant seen so far."""
        self.snapshot()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for p in self._seen.values():
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)  # psutil checks the pid was not reused

    def kill_below(self) -> None:
        """SIGKILL every descendant of the leader, sparing the leader itself.

        The leader is the tool's supervisor and subreaper: spared, it reaps the tree, kills
        whatever was started after this look, records the exit status and exits.
        """
        self.snapshot()
        for p in self._seen.values():
            if p.pid != self.pid:
                with contextlib.suppress(psutil.Error):
                    p.kill()

    def kill_group(self) -> bool:
        """SIGKILL whatever is left in the group; whether anything was."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def alive(self) -> list[psutil.Process]:
        """The processes seen that still run."""
        return [p for p in self._seen.values() if _running(p)]


def kill_marked(name: str, value: str) -> int:
    """SIGKILL every process of this user whose environment holds `name=value`; how many.

    The last resort when a tool's supervisor died without sweeping up after it: processes
    the tool started keep the job's marker in their environment unless they replaced it.
    """
    me, killed = os.getuid(), 0
    for p in psutil.process_iter():
        try:
            if p.uids().real != me or p.pid == os.getpid():
                continue
            if p.environ().get(name) == value:
                p.kill()
                killed += 1
        except psutil.Error:
            continue
    return killed


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
