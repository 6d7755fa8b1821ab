"""The registry's data directory holds its credentials: it is private, and the registry
refuses one that other users share or own instead of taking it over."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support.registry import start_registry_process, stop_registry_process


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`registry serve` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "agent", "registry", "serve", "--port", "0",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": secrets.token_urlsafe(32)},
    )  # fmt: skip


async def _make_a_pool(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/v2/agent_pools", json={"name": "p"}, headers=headers) as r,
    ):
        assert r.status == 200


def test_the_database_and_its_journal_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    reg = start_registry_process(data, secrets.token_urlsafe(32))
    try:
        asyncio.run(_make_a_pool(reg.url, reg.token))  # a write: the WAL and its index exist
        assert _mode(data) == 0o700
        for name in ("registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"):
            assert _mode(data / name) == 0o600, name
    finally:
        stop_registry_process(reg)
    # A database an older release left readable is made private at the next start.
    (data / "registry.sqlite3").chmod(0o644)
    reg = start_registry_process(data, secrets.token_urlsafe(32))
    try:
        assert _mode(data / "registry.sqlite3") == 0o600
    finally:
        stop_registry_process(reg)


def test_a_world_writable_data_dir_is_refused_not_chmodded(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    result = _serve(shared)
    assert result.returncode == 2
    assert "writable by every user" in result.stderr
    assert _mode(shared) == 0o1777
    assert list(shared.iterdir()) == []
    shared.chmod(0o2770)  # a project group's directory: every member could plant files
    result = _serve(shared)
    assert result.returncode == 2
    assert "writable by its group" in result.stderr
    assert _mode(shared) == 0o2770


def test_a_data_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o755)
        os.chown(theirs, 65534, 65534)  # nobody
    else:
        theirs = Path("/usr/share")  # root's, never ours
    before = _mode(theirs)
    result = _serve(theirs)
    assert result.returncode == 2
    assert "owned by another user" in result.stderr
    assert _mode(theirs) == before
    assert not (theirs / "registry.sqlite3").exists()


def test_a_fresh_data_dir_inside_a_shared_one_is_fine(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    reg = start_registry_process(shared / "registry", secrets.token_urlsafe(32))
    try:
        assert _mode(shared / "registry") == 0o700
    finally:
        stop_registry_process(reg)
