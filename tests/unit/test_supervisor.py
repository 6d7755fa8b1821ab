"""The tool supervisor: the status it records read back, and the real shell running a tool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.execution.supervisor import Status, command, parse_status, read_status, was_started


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("0\n", Status(0, None)),
        ("3\n", Status(3, None)),
        ("128\n", Status(128, None)),
        ("137\n", Status(None, 9)),  # a shell's 128 + N: killed by SIGKILL
        ("143", Status(None, 15)),
        ("", None),  # torn: the shell was killed while writing
        ("nonsense", None),
        ("-1", None),
        ("999", None),
    ],
)
def test_parse_status(text: str, status: Status | None) -> None:
    assert parse_status(text) == status


def run_supervised(tmp_path: Path, code: str) -> subprocess.Popen[bytes]:
    argv = command(tmp_path, tmp_path, [sys.executable, "-c", code])
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)


def test_the_shell_records_its_pid_first_and_the_tools_exit_code_last(tmp_path: Path) -> None:
    proc = run_supervised(tmp_path, "import sys; sys.exit(7)")
    assert proc.wait(timeout=30) == 7
    assert was_started(tmp_path)
    assert int((tmp_path / "pid").read_text()) == proc.pid
    assert read_status(tmp_path) == Status(7, None)


def test_a_stop_signal_to_the_group_ends_the_tool_and_the_shell_records_it(tmp_path: Path) -> None:
    # The tool reports its SIGTERM disposition (the shell's trap must not leave it ignored),
    # then waits; the test signals the whole group as the agent does.
    code = (
        "import signal, sys, time\n"
        "print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)\n"
        "time.sleep(60)\n"
    )
    argv = command(tmp_path, tmp_path, [sys.executable, "-c", code])
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"True"
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM  # the shell lived on to say so
    proc.stdout.close()
    assert read_status(tmp_path) == Status(None, signal.SIGTERM)


def test_the_tool_runs_in_its_directory_and_a_missing_one_is_recorded_as_126(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code = "import os, sys; sys.exit(0 if os.getcwd() == sys.argv[1] else 5)"
    argv = command(tmp_path, work, [sys.executable, "-c", code, str(work)])
    assert subprocess.run(argv, check=False).returncode == 0
    assert read_status(tmp_path) == Status(0, None)
    gone = command(tmp_path, tmp_path / "nowhere", [sys.executable, "-c", "pass"])
    assert subprocess.run(gone, check=False, stderr=subprocess.DEVNULL).returncode == 126
    assert read_status(tmp_path) == Status(126, None)


def test_a_script_without_a_shebang_runs_under_sh_as_the_shell_ran_it(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text('echo "ran as $0 with $1" > out.txt\nexit 4\n')
    script.chmod(0o755)
    assert (
        subprocess.run(command(tmp_path, tmp_path, [str(script), "arg"]), check=False).returncode
        == 4
    )
    assert (tmp_path / "out.txt").read_text() == f"ran as {script} with arg\n"
    assert read_status(tmp_path) == Status(4, None)


def test_a_signal_the_tool_sends_its_whole_group_leaves_the_supervisor_to_record_it(
    tmp_path: Path,
) -> None:
    # `kill -USR1 0`: the tool signals every process of its group, its supervisor included.
    code = "import os, signal; os.kill(0, signal.SIGUSR1)"
    argv = command(tmp_path, tmp_path, [sys.executable, "-c", code])
    proc = subprocess.run(argv, check=False, start_new_session=True)  # as the agent starts it
    assert proc.returncode == 128 + signal.SIGUSR1
    assert read_status(tmp_path) == Status(None, signal.SIGUSR1)


def test_every_process_the_tool_left_is_killed_before_the_status_is_written(
    tmp_path: Path,
) -> None:
    # Fifty daemons, each in a session of its own: all are gone once the supervisor exits.
    code = (
        "import os, time\n"
        "ready_r, ready_w = os.pipe()\n"
        "for i in range(50):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            open(f'daemon-{os.getpid()}', 'w').close()\n"
        "            os.write(ready_w, b'x')\n"
        "            time.sleep(600)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "for i in range(50):\n"
        "    os.read(ready_r, 1)\n"  # each daemon has written its pid file
    )
    ran = subprocess.run(command(tmp_path, tmp_path, [sys.executable, "-c", code]), check=False)
    assert ran.returncode == 0
    pids = [int(p.name.removeprefix("daemon-")) for p in tmp_path.glob("daemon-*")]
    assert len(pids) == 50
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
