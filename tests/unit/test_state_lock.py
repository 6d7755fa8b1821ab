"""One agent per state path: a second one is refused, saying who holds it; a release frees it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.crashsafe.lock import StateInUse, StateLock, holder


def test_a_second_agent_on_the_same_state_path_is_refused(tmp_path: Path) -> None:
    assert holder(tmp_path / "state") is None  # no lock file yet
    with StateLock(tmp_path / "state") as held:
        assert held.path.read_text().strip() == str(os.getpid())
        assert holder(tmp_path / "state") == os.getpid()
        with (
            pytest.raises(StateInUse, match=rf"another agent \(pid {os.getpid()}\)"),
            StateLock(tmp_path / "state"),
        ):
            pass
        with StateLock(tmp_path / "other"):  # another state path is another agent's
            pass
    assert holder(tmp_path / "state") is None  # released on exit
    with StateLock(tmp_path / "state"):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from agent.crashsafe.lock import StateLock\n"
        "with StateLock(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StateInUse):
        StateLock(tmp_path).__enter__()
    holder.kill()
    holder.wait()
    holder.stdout.close()
    with StateLock(tmp_path):  # the kernel released it with the process
        pass


def test_the_state_directory_is_made_private_or_tightened(tmp_path: Path) -> None:
    with StateLock(tmp_path / "new" / "state"):
        assert (tmp_path / "new" / "state").stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with StateLock(loose):
        assert loose.stat().st_mode & 0o777 == 0o700
