"""What a person asks of a running agent and what it says back, as files in its state path.

*Decision:* a pause is the file `<state path>/paused` (0600). `istari-agent pause` writes it
and sends SIGUSR1 to the agent holding the state path's lock; `resume` removes it and sends
SIGUSR1 again. SIGUSR1 means "read the pause file now", so `kill -USR1` after touching or
removing the file does the same, from a shell, systemd (`systemctl kill -s USR1`) or a
script. The file outlives the process: an agent paused by a person stays paused across a
restart or an upgrade until a person resumes it (a restart is not a resume).

The agent writes what it is doing to `<state path>/status.json` (0600, replaced atomically,
so a reader never sees half of it): `istari-agent status` reads it, and the lock says
whether the agent that wrote it still runs. `upgrading` marks a stop for an upgrade (SIGUSR2)
so the next start can say how the upgrade went.

A reload (SIGHUP, `istari-agent reload`; agent/reload.py) is answered in `<state
path>/reload.json` (0600, replaced atomically): its sequence number, when it started and
ended, whether the configuration could be read, and which settings were applied or refused.
`istari-agent reload` notes the time, signals, and takes the first answer started after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from agent.crashsafe.lock import holder

log = structlog.get_logger(__name__)

PAUSE_FILE = "paused"
STATUS_FILE = "status.json"
UPGRADE_FILE = "upgrading"
RELOAD_FILE = "reload.json"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (0600) through a temporary file and a rename: all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def set_paused(state_path: Path, paused: bool) -> None:
    """Write (or remove) the pause file; the agent acts on it when signalled or started."""
    path = state_path / PAUSE_FILE
    if paused:
        state_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_private(path, json.dumps({"since": time.time()}) + "\n")
    else:
        path.unlink(missing_ok=True)


def paused_since(state_path: Path) -> float | None:
    """When a person paused the agent (epoch seconds), or None when it is not paused."""
    try:
        text = (state_path / PAUSE_FILE).read_text()
    except FileNotFoundError:
        return None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return float(json.loads(text)["since"])
    return 0.0  # a file a person made by hand: paused, since unknown


def tell_agent(state_path: Path, sig: signal.Signals = signal.SIGUSR1) -> int | None:
    """Send `sig` (SIGUSR1: read the pause file) to the agent running with `state_path`;
    its pid, or None when none runs (or it exited meanwhile: nothing to tell)."""
    pid = holder(state_path)
    if pid is not None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
    return pid


def write_reload_answer(state_path: Path, answer: dict[str, Any]) -> None:
    """Replace reload.json with the answer to the last reload."""
    _write_private(state_path / RELOAD_FILE, json.dumps(answer, indent=1) + "\n")


def read_reload_answer(state_path: Path) -> dict[str, Any] | None:
    """The answer to the last reload, or None when there is none (or it is unreadable)."""
    try:
        found = json.loads((state_path / RELOAD_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found if isinstance(found, dict) else None


class PauseSwitch:
    """The agent's side of the pause file: read at start and whenever SIGUSR1 arrives."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.since = paused_since(state_path)
        self.on_change: Callable[[], None] | None = None

    @property
    def paused(self) -> bool:
        """Whether a person paused the agent."""
        return self.since is not None

    def reread(self) -> None:
        """Read the pause file again (the SIGUSR1 handler); tell `on_change` if it changed."""
        before = self.paused
        self.since = paused_since(self.state_path)
        if self.paused is not before and self.on_change is not None:
            self.on_change()


def write_status(state_path: Path, snapshot: dict[str, Any]) -> None:
    """Replace the status file with `snapshot` (what the agent is doing now)."""
    _write_private(state_path / STATUS_FILE, json.dumps(snapshot, indent=1) + "\n")


def read_status(state_path: Path) -> dict[str, Any] | None:
    """The last snapshot the agent wrote, or None when there is none (or it is unreadable)."""
    try:
        found = json.loads((state_path / STATUS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def mark_upgrading(state_path: Path) -> None:
    """The agent stops for an upgrade (SIGUSR2): the next start reports how it went."""
    _write_private(state_path / UPGRADE_FILE, json.dumps({"since": time.time()}) + "\n")


def take_upgrade_mark(state_path: Path) -> bool:
    """Whether the last run stopped for an upgrade (the mark is removed: reported once)."""
    try:
        (state_path / UPGRADE_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


class StatusFile:
    """Rewrites the status file from `snapshot` whenever `changed` was called, from one task."""

    def __init__(self, state_path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.state_path = state_path
        self.snapshot = snapshot
        self._changed = asyncio.Event()
        self._changed.set()  # the first snapshot at once

    def changed(self) -> None:
        """What the agent is doing changed: rewrite the file soon."""
        self._changed.set()

    def write(self, **extra: Any) -> None:
        """Write the snapshot now (an unwritable state path is logged, never fatal)."""
        try:
            write_status(self.state_path, {**self.snapshot(), **extra, "written": time.time()})
        except OSError as e:
            log.warning("agent.status_file_failed", path=str(self.state_path), error=str(e))

    async def run(self, settle: float) -> None:
        """Write the snapshot after each change, at most every `settle` seconds."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            self.write()
            await asyncio.sleep(settle)
