"""Tokens of the local registry: a revoked one stops working at once, even in a registry process
that is already running; a weak admin token is refused; the scheme is case-insensitive."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner, Result

from agent.cli_registry import registry
from agent.localregistry.server import RunningRegistry
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process


def registry_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`istari-agent registry ...` as a subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "ISTARI_LOCAL_REGISTRY_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "agent", "registry", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def token_cli(*args: str) -> Result:
    """`istari-agent registry token ...`, run in this process (it only opens the database)
    against the database of a registry that runs as a separate process."""
    return CliRunner().invoke(registry, ["token", *args])


async def _status(url: str, path: str, authorization: str, method: str = "GET") -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{url}{path}", headers={"Authorization": authorization}) as r,
    ):
        return r.status


async def _mint(url: str, admin: str, name: str) -> tuple[str, str]:
    """A new agent PAT: (id, secret)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/v2/pat/agent?name={name}", headers={"Authorization": f"Bearer {admin}"}
        ) as r,
    ):
        assert r.status == 200
        doc = await r.json()
        return doc["id"], doc["token"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RegistryProcess]:
    reg = start_registry_process(tmp_path / "data", secrets.token_urlsafe(32))
    yield reg
    stop_registry_process(reg)


def test_a_revoked_pat_is_refused_at_once_by_the_running_registry(
    served: RegistryProcess,
) -> None:
    pat_id, pat = asyncio.run(_mint(served.url, served.token, "ci-runner"))
    assert asyncio.run(_status(served.url, "/api/v2/agents", f"Bearer {pat}")) == 200

    listed = token_cli("list", "--data-dir", str(served.data_dir))
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.stdout.splitlines() if pat_id in x)
    assert "ci-runner" in line and "agent" in line
    assert any("admin" in x for x in listed.stdout.splitlines())
    for secret in (pat, served.token):  # neither a secret nor its stored hash is shown
        assert secret not in listed.stdout
        assert hashlib.sha256(secret.encode()).hexdigest() not in listed.stdout

    revoked = token_cli("revoke", pat_id, "--data-dir", str(served.data_dir))
    assert revoked.exit_code == 0, revoked.output
    assert asyncio.run(_status(served.url, "/api/v2/agents", f"Bearer {pat}")) == 401
    assert asyncio.run(_status(served.url, "/api/v2/agents", f"Bearer {served.token}")) == 200
    listed = token_cli("list", "--data-dir", str(served.data_dir))
    assert pat_id not in listed.stdout


def test_the_admin_token_is_not_revoked_from_the_cli(served: RegistryProcess) -> None:
    listed = token_cli("list", "--data-dir", str(served.data_dir))
    admin_id = next(x for x in listed.stdout.splitlines() if " admin " in x).split()[0]
    refused = token_cli("revoke", admin_id, "--data-dir", str(served.data_dir))
    assert refused.exit_code == 1
    assert "ISTARI_LOCAL_REGISTRY_TOKEN" in refused.stderr
    assert asyncio.run(_status(served.url, "/api/v2/agents", f"Bearer {served.token}")) == 200
    unknown = token_cli("revoke", "no-such-id", "--data-dir", str(served.data_dir))
    assert unknown.exit_code == 1
    assert "no token with id no-such-id" in unknown.stderr


def _pat_of_a_stopped_registry(data: Path) -> tuple[str, str]:
    """A registry started in `data`, a PAT minted, the registry stopped: (its admin, the PAT)."""
    first = start_registry_process(data, secrets.token_urlsafe(32))
    try:
        _, pat = asyncio.run(_mint(first.url, first.token, "agent-1"))
    finally:
        stop_registry_process(first)
    return first.token, pat


def test_pats_outlive_an_admin_rotation_until_revoked_all(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first_admin, pat = _pat_of_a_stopped_registry(data)
    second = start_registry_process(data, secrets.token_urlsafe(32))  # the admin token rotated
    try:
        assert asyncio.run(_status(second.url, "/api/v2/agents", f"Bearer {first_admin}")) == 401
        assert asyncio.run(_status(second.url, "/api/v2/agents", f"Bearer {pat}")) == 200
        gone = token_cli("revoke", "--all", "--data-dir", str(data))
        assert gone.exit_code == 0, gone.output
        assert asyncio.run(_status(second.url, "/api/v2/agents", f"Bearer {pat}")) == 401
        assert asyncio.run(_status(second.url, "/api/v2/agents", f"Bearer {second.token}")) == 200
    finally:
        stop_registry_process(second)


def test_a_short_admin_token_is_refused_at_start(tmp_path: Path) -> None:
    env_token = subprocess.run(
        [sys.executable, "-m", "agent", "registry", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": "x" * 31},
    )  # fmt: skip
    assert env_token.returncode == 2
    assert "at least 32 characters" in env_token.stderr
    assert "secrets.token_urlsafe(32)" in env_token.stderr
    assert not (tmp_path / "data" / "registry.sqlite3").exists()

    data = tmp_path / "filed"
    data.mkdir(mode=0o700)
    (data / "admin-token").write_text("password")
    (data / "admin-token").chmod(0o600)
    filed = registry_cli("serve", "--port", "0", "--data-dir", str(data))
    assert filed.returncode == 2
    assert "admin-token" in filed.stderr and "at least 32 characters" in filed.stderr


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_the_bearer_scheme_is_case_insensitive(
    local_registry: RunningRegistry, scheme: str
) -> None:
    assert (
        await _status(local_registry.url, "/api/v2/agents", f"{scheme} {local_registry.token}")
        == 200
    )
    assert await _status(local_registry.url, "/api/v2/agents", f"{scheme} wrong-token") == 401


def test_a_pats_secret_cannot_become_the_admin_token(tmp_path: Path) -> None:
    """Whoever holds a PAT must not be made admin by an operator's slip (or a crash at start)."""
    data = tmp_path / "data"
    _, pat = _pat_of_a_stopped_registry(data)
    refused = subprocess.run(
        [sys.executable, "-m", "agent", "registry", "serve", "--port", "0",
         "--data-dir", str(data)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": pat},
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "already the secret of another token" in refused.stderr
    assert pat not in refused.stderr
