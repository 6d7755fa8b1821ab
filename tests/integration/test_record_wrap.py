"""`record -- COMMAND`'s runner with real child processes: tee, exit statuses, leftovers."""

from __future__ import annotations

import io
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

from agent.workflowlog.wrap import exit_status, run_teed

PY = sys.executable


def run(tmp_path: Path, *argv: str, **kw: Any) -> tuple[int, bytes, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    log = tmp_path / "command.log"
    code = run_teed(list(argv), log, stdout=out, stderr=err, **kw)
    return code, out.getvalue(), err.getvalue(), log.read_bytes()


def test_output_goes_to_the_terminal_and_the_log(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.stdout.write('out 1\\n'); sys.stdout.flush()\n"
        "sys.stderr.write('err 1\\n'); sys.stderr.flush()\n"
        "sys.stdout.buffer.write(bytes(range(256))); sys.stdout.flush()\n"
    )
    code, out, err, log = run(tmp_path, PY, "-c", script)
    assert code == 0
    assert out == b"out 1\n" + bytes(range(256))
    assert err == b"err 1\n"
    # Two pipes read by two threads: each stream stays in order, their interleaving is a race.
    assert b"err 1\n" in log
    assert log.replace(b"err 1\n", b"", 1) == out
    assert stat.S_IMODE((tmp_path / "command.log").stat().st_mode) == 0o600


def test_exit_codes_and_signals_read_as_a_shell_reports_them(tmp_path: Path) -> None:
    assert run(tmp_path, PY, "-c", "raise SystemExit(3)")[0] == 3
    killed = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    assert run(tmp_path, PY, "-c", killed)[0] == 128 + signal.SIGTERM
    assert exit_status(-9) == 137


def test_a_command_that_cannot_start_says_why_in_the_log(tmp_path: Path) -> None:
    code, _, err, log = run(tmp_path, str(tmp_path / "no-such-program"))
    assert code == 127
    assert b"cannot run" in err and b"No such file" in log
    not_executable = tmp_path / "script.sh"
    not_executable.write_text("echo hi\n")
    assert run(tmp_path, str(not_executable))[0] == 126


def test_a_background_child_holding_the_pipes_does_not_hold_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "print('left one behind')\n"
    )
    try:
        code, out, _, log = run(tmp_path, PY, "-c", script, drain_s=0.5)
        assert (code, out, log) == (0, b"left one behind\n", b"left one behind\n")
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
