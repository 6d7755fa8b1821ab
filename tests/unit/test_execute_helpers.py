"""The Running phase's pure helpers: how an exit is described, the log tail, the tool's env."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.execution.base import ExitInfo
from agent.execution.local import tool_environment
from agent.jobs.ending import describe_exit
from agent.jobs.execute import TAIL_BYTES, TAIL_LINES, log_tail


def exit_info(
    code: int | None = None, sig: int | None = None, interrupted: str | None = None
) -> ExitInfo:
    return ExitInfo(code, sig, timed_out=False, interrupted=interrupted, wall_time=1.0)


# describe_exit


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_an_exit_code_is_described(code: int) -> None:
    assert describe_exit(exit_info(code=code)) == f"exited with code {code}"


@pytest.mark.parametrize(
    ("sig", "name"),
    [(signal.SIGSEGV, "SIGSEGV"), (signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM")],
)
def test_a_signal_is_described_by_name(sig: int, name: str) -> None:
    assert describe_exit(exit_info(sig=int(sig))) == f"was killed by {name}"


def test_an_unknown_signal_number_is_described_by_number() -> None:
    assert describe_exit(exit_info(sig=200)) == "was killed by signal 200"


def test_a_signal_wins_over_an_interruption() -> None:
    info = exit_info(sig=int(signal.SIGTERM), interrupted="canceled_by_user")
    assert describe_exit(info) == "was killed by SIGTERM"


def test_an_interruption_without_signal_is_described_with_its_reason() -> None:
    info = exit_info(code=0, interrupted="canceled_by_user")
    assert describe_exit(info) == "was stopped (canceled_by_user)"


# log_tail


def test_a_short_log_is_returned_whole(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("first\nsecond\nthird\n")
    assert log_tail(log) == "first\nsecond\nthird"


def test_only_the_last_lines_are_kept(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log) == "\n".join(f"line {i}" for i in range(100 - TAIL_LINES, 100))
    assert log_tail(log, max_lines=2) == "line 98\nline 99"


def test_a_huge_log_is_read_only_up_to_max_bytes_and_the_cut_line_dropped(
    tmp_path: Path,
) -> None:
    log = tmp_path / "job.log"
    # 20 lines of 9 bytes: the last 25 bytes start in the middle of "line 017".
    log.write_text("".join(f"line {i:03d}\n" for i in range(20)))
    tail = log_tail(log, max_bytes=25, max_lines=100)
    assert tail == "line 018\nline 019"
    assert len(tail.encode()) <= 25


def test_the_default_bounds_hold_for_a_tool_that_printed_megabytes(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_bytes(b"x" * 5_000_000 + b"\nthe end\n")
    tail = log_tail(log)
    assert tail == "the end"
    assert len(tail) <= TAIL_BYTES


def test_very_long_lines_are_shortened(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("a" * 1000 + "\n")
    assert log_tail(log) == "a" * 300


def test_a_single_cut_line_is_still_shown(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("y" * 100)
    assert log_tail(log, max_bytes=10) == "y" * 10


def test_bytes_that_are_not_utf8_are_replaced(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_bytes(b"ok \xff\xfe\n")
    assert log_tail(log) == "ok \ufffd\ufffd"


def test_a_missing_or_empty_log_has_no_tail(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "missing.log") == ""
    (tmp_path / "empty.log").write_bytes(b"")
    assert log_tail(tmp_path / "empty.log") == ""


# tool_environment


def test_the_tool_never_sees_the_agents_settings_or_notify_socket() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/agent",
        "LANG": "C.UTF-8",
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN": "secret",
        "ISTARI_LOCAL_REGISTRY_TOKEN": "secret",
        "istari_digital_agent_poll_interval": "2",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "MY_ISTARI_THING": "kept",  # only a prefix counts
    }
    assert tool_environment(base) == {
        "PATH": "/usr/bin",
        "HOME": "/home/agent",
        "LANG": "C.UTF-8",
        "MY_ISTARI_THING": "kept",
    }


def test_the_base_environment_is_not_changed() -> None:
    base = {"ISTARI_X": "1", "PATH": "/bin"}
    tool_environment(base)
    assert base == {"ISTARI_X": "1", "PATH": "/bin"}
