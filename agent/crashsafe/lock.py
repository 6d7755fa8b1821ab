"""One agent per state path: an advisory lock held for the agent's lifetime.

Two agents sharing a state path would share a journal and each resume the other's jobs, so
the second one refuses to start and says which process holds the lock. The kernel releases
the lock when the holder exits however it exits (`kill -9` included), so a stale lock never
blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from agent.errors import AgentError


class StateInUse(AgentError):
    """Another agent is running with this state path."""


class StateLock:
    """`<state path>/agent.lock`, held (flock, exclusive) while the agent runs."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path / "agent.lock"
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            msg = (
                f"another agent (pid {holder}) is running with the state path "
                f"{self.path.parent}; stop it, or give this one its own state_path"
            )
            raise StateInUse(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def holder(state_path: Path) -> int | None:
    """The pid of the agent running with `state_path`, or None when none is."""
    path = state_path / "agent.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        return None  # nobody holds it
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """Make `path` (0700), or tighten it to 0700: the journal and the agent id live there."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
