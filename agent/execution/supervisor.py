"""The supervisor every local tool runs under, so that its end can be read later.

The agent does not start the tool itself: it starts the supervisor program (supervise.py, on
the agent's own Python with `-I -S`) in a new session, and the supervisor runs the tool. It
writes its pid to `<status dir>/pid` before the tool starts and the tool's exit status to
`<status dir>/exit` after it ends. It is the tool's child subreaper: whatever the tool starts,
even a daemon that double-forks and calls `setsid`, stays below it and is killed when the
tool ends, before the status is written. It handles SIGHUP, SIGINT and SIGTERM, so a stop
signal sent to the group reaches the tool and the supervisor lives on to record how it ended
and clean up. The agent may be killed or restarted meanwhile: the supervisor does not depend
on it (no pipes to it, stdin from /dev/null, output to the job's log).

The supervisor reports a tool killed by signal N as status 128+N, like every shell; a tool
that exits with a code above 128 of its own accord is read the same way (docs/agent.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.execution import supervise, tree
from agent.safeopen import open_regular

NAME = "istari-supervisor"  # the program's first argument: how `ps` and a restart find it
PROGRAM = Path(supervise.__file__)
_SIGNALLED = 128  # a shell's status for a tool killed by signal N is 128 + N
_MAX_SIGNAL = 64


def command(status_dir: Path, cwd: Path, argv: list[str]) -> list[str]:
    """The argv that runs `argv` in `cwd` under the supervisor, recording into `status_dir`."""
    return [sys.executable, "-I", "-S", str(PROGRAM), NAME, str(status_dir), str(cwd), *argv]


@dataclass(frozen=True)
class Status:
    """How a supervised tool ended, as its supervisor recorded it."""

    exit_code: int | None  # None when a signal ended it
    signal: int | None


def parse_status(text: str) -> Status | None:
    """The recorded exit status, or None when the record is missing or torn (pure)."""
    try:
        code = int(text.strip())
    except ValueError:
        return None
    if code < 0 or code > _SIGNALLED + _MAX_SIGNAL:
        return None
    if code > _SIGNALLED:
        return Status(None, code - _SIGNALLED)
    return Status(code, None)


def read_status(status_dir: Path) -> Status | None:
    """What the supervisor in `status_dir` recorded, if it got to record anything."""
    try:
        with open_regular(status_dir / "exit") as f:  # the tool could have replaced it
            return parse_status(f.read(64).decode("ascii", "replace"))
    except OSError:
        return None


def was_started(status_dir: Path) -> bool:
    """Whether a supervisor ever ran in `status_dir` (it writes its pid before the tool starts)."""
    return (status_dir / "pid").exists()


def find(status_dir: Path, pid: int | None, since: float | None) -> psutil.Process | None:
    """The live supervisor recording into `status_dir`, if one runs.

    The journal's pid and start time are tried first; a supervisor started just before the
    agent died (before it could journal the pid) is found by its command line.
    """
    if pid is not None and since is not None:
        proc = tree.find(pid, since)
        if proc is not None and _records_into(proc, status_dir):
            return proc
    for proc in psutil.process_iter():
        if _records_into(proc, status_dir):
            return proc
    return None


def _records_into(proc: psutil.Process, status_dir: Path) -> bool:
    try:
        argv = proc.cmdline()
        alive = proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
    # [python, -I, -S, supervise.py, NAME, dir, ...]; earlier agents ran [sh, -c, script,
    # NAME, dir, ...], and a tool such an agent left running is still found after an upgrade.
    return alive and [NAME, str(status_dir)] in (argv[3:5], argv[4:6])
