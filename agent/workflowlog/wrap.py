"""`record -- COMMAND`: run a command, its output going both to the terminal and to a log file.

The command is a real child process with our stdin. Its stdout and stderr are read by two
threads that write each chunk to our own stdout or stderr and each whole line, in arrival
order, to one log file (0600). SIGTERM and SIGHUP are passed on to the command; SIGINT is
not, because the terminal already sends it to the whole foreground group, command included:
the command decides, and we stay to record how it ended. A command killed by signal N ends
as 128 + N, as a shell reports it; one that cannot be started ends as 127 (not found) or 126.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import BinaryIO

_CHUNK = 64 * 1024
# After the command exits, how long its output may still arrive: a background child it left
# behind can hold the pipes open for ever, and the run is over.
_DRAIN_S = 5.0


def exit_status(returncode: int) -> int:
    """A `Popen.returncode` as a shell's exit status (signal N -> 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


class _Tee:
    """One log file shared by both pumps; writes after `close` are dropped."""

    def __init__(self, log: BinaryIO) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._closed = False

    def write(self, logged: bytes, shown: bytes, terminal: BinaryIO | None) -> None:
        """Log `logged`, then show `shown` on `terminal` (which may raise OSError)."""
        with self._lock:
            if self._closed:
                return
            self._log.write(logged)
            if terminal is not None and shown:
                terminal.write(shown)
                terminal.flush()

    def close(self) -> None:
        with self._lock:
            self._closed = True


def _pump(source: BinaryIO, terminal: BinaryIO, tee: _Tee) -> None:
    """Copy one of the command's pipes until its end; the pump owns (and closes) the pipe.

    The terminal gets each chunk as it comes; the log gets whole lines (a long line in
    pieces), so lines of stdout and stderr do not cut into each other there.
    """
    shown: BinaryIO | None = terminal
    partial = b""
    with source:
        fd = source.fileno()
        while chunk := os.read(fd, _CHUNK):
            partial += chunk
            cut = partial.rfind(b"\n") + 1 if len(partial) < _CHUNK else len(partial)
            try:
                tee.write(partial[:cut], chunk, shown)
            except OSError:  # our terminal went away (a closed pipe): keep logging
                shown = None
            partial = partial[cut:]
    tee.write(partial, b"", None)


@contextmanager
def _passing_signals(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    def forward(signum: int, frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            proc.send_signal(signum)

    def stay(signum: int, frame: FrameType | None) -> None:
        """The terminal sent SIGINT to the command as well; it decides."""

    handlers = {signal.SIGTERM: forward, signal.SIGHUP: forward, signal.SIGINT: stay}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(argv: list[str], tee: _Tee, stderr: BinaryIO) -> subprocess.Popen[bytes] | int:
    """The running command, or the exit status saying why it could not start."""
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        line = f"istari-agent record: cannot run {argv[0]!r}: {e.strerror or e}\n".encode()
        tee.write(line, line, stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126


def run_teed(
    argv: list[str],
    log_path: Path,
    *,
    stdout: BinaryIO,
    stderr: BinaryIO,
    drain_s: float = _DRAIN_S,
) -> int:
    """Run `argv` to its end, teeing its output into `log_path`; returns its exit status.

    Call from the main thread (it sets signal handlers for the command's lifetime).
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log:
        tee = _Tee(log)
        started = _start(argv, tee, stderr)
        if isinstance(started, int):
            return started
        proc = started
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, stdout, tee), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, stderr, tee), daemon=True),
        ]
        with _passing_signals(proc):
            for pump in pumps:
                pump.start()
            code = proc.wait()
        for pump in pumps:
            pump.join(drain_s)
        tee.close()  # a pump still reading (a leftover holds the pipe) writes nothing more
    return exit_status(code)
