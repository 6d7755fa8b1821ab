"""`istari-agent cache list|clear` as a real child process, on a real cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.cache.store import CacheStore
from agent.crashsafe.lock import StateLock
from agent.protocol.content import new_salt, salted_sha


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    return subprocess.run(
        [sys.executable, "-m", "agent", "cache", *args, "--state-path", str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cache(state: Path) -> tuple[CacheStore, str]:
    store = CacheStore(state / "cache", limit=2 * 1024**3)
    content = os.urandom(3 * 1024 * 1024)
    salt = new_salt()
    sha = salted_sha(content, salt)
    store.partial(sha).write_bytes(content)
    assert store.add(sha, salt, "bracket.step", set())
    return store, sha


def test_list_shows_each_input_and_the_total_against_the_limit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _, sha = _cache(state)
    done = _cli(state, "list")
    assert done.returncode == 0, done.stderr
    first, last = done.stdout.strip().splitlines()
    assert first.startswith(sha[:16]) and "3.0 MiB" in first and first.endswith("bracket.step")
    assert last.startswith("1 cached input(s), 3.0 MiB of 2.0 GiB")


def test_clear_frees_the_cache_and_says_how_much(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store, sha = _cache(state)
    done = _cli(state, "clear")
    assert done.returncode == 0, done.stderr
    assert "freed 3.0 MiB" in done.stdout
    assert not store.path(sha).exists()
    assert _cli(state, "list").stdout.startswith("0 cached input(s), 0 B")


def test_clear_is_refused_while_an_agent_runs_with_the_state_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store, sha = _cache(state)
    with StateLock(state):  # what a running agent holds
        done = _cli(state, "clear")
    assert done.returncode == 1
    assert f"an agent (pid {os.getpid()}) is running" in done.stderr
    assert store.path(sha).exists()
