"""Identity-service mode as a user meets it: a registry where PATs cannot be made
(`registry serve --identity-only`), `istari-agent init ... --identity-key` registering a key
pair, and the agent running jobs with that key alone.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from agent.configwrite import CREDENTIALS_NAME
from agent.jobs.outcome import EXIT_CODES, Reason
from agent.protocol import identity as rules
from agent.protocol.states import JobStatus
from tests.acceptance.test_official_config import (
    P,
    home_env,
    job_status,
    official_path,
    our_keys,
)
from tests.support.agentcli import agent, submit_job
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process
from tests.tools import module


@pytest.fixture(scope="module")
def identity_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A registry process with identity on: no PAT can be made."""
    data = tmp_path_factory.mktemp("registry")
    reg = start_registry_process(data, secrets.token_urlsafe(24), "--identity-only")
    yield reg
    stop_registry_process(reg)


def post(url: str, token: str, **kw: object) -> tuple[int, dict[str, object]]:
    async def go() -> tuple[int, dict[str, object]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as s, s.post(url, headers=headers, **kw) as r:  # type: ignore[arg-type]
            return r.status, await r.json()

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/api/v2/pat/agent", "/api/v2/pat"])
def test_an_identity_only_registry_refuses_to_make_pats_with_405(
    identity_registry: RegistryProcess, path: str
) -> None:
    status, answer = post(f"{identity_registry.url}{path}?name=x", identity_registry.token)
    assert status == 405  # what the platform answers: the SDK's PATsDeprecatedError
    assert "identity-service mode" in str(answer["detail"])
    assert "/api/v2/key/agent" in str(answer["detail"])


def test_init_with_identity_key_registers_a_key_the_agent_runs_jobs_with_until_revoked(
    identity_registry: RegistryProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    module.install(tmp_path / "modules")
    env = home_env(home)
    path = official_path(home)
    token_file = tmp_path / "token.txt"
    token_file.write_text(identity_registry.token + "\n")

    init = agent(env, "init", identity_registry.url, str(token_file), "--identity-key")
    assert init.returncode == 0, init.stderr
    assert identity_registry.token not in init.stdout + init.stderr
    token_file.unlink()  # the token only registered the key; the agent never needs it

    creds_path = path.parent / CREDENTIALS_NAME
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = rules.parse_credentials(creds_path.read_bytes())
    assert set(json.loads(creds_path.read_text())) == {"clientId", "keyId", "key"}
    assert creds.client_id.startswith("agent-")
    data = yaml.safe_load(path.read_text())
    assert data["default"][f"{P}registry_api_url"] == identity_registry.url
    assert data["agent"] == {f"{P}registry_api_credentials_file": str(creds_path)}
    assert identity_registry.token not in path.read_text()

    env |= {f"ISTARI_DIGITAL_AGENT_{k.upper()}": v for k, v in our_keys(tmp_path).items()}
    env["ISTARI_DIGITAL_AGENT_OUTPUT_PATH"] = str(tmp_path / "work")
    job = submit_job(identity_registry, tmp_path, "echo", {"label": "ok"})
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[Reason.COMPLETED], done.stderr[-3000:]
    assert job_status(identity_registry, job) is JobStatus.COMPLETED

    # Revoked while the registry runs: the next sign-in is refused, with one line.
    data_dir = ["--data-dir", str(identity_registry.data_dir)]
    unknown = agent(env, "registry", "key", "revoke", creds.client_id, "key-nope", *data_dir)
    assert unknown.returncode == 1
    assert "no key key-nope" in unknown.stderr
    revoke = agent(env, "registry", "key", "revoke", creds.client_id, creds.key_id, *data_dir)
    assert revoke.returncode == 0, revoke.stderr
    assert f"revoked key {creds.key_id}" in revoke.stdout
    refused = agent(env, "run", "--once")
    assert refused.returncode != 0
    assert f"refused key {creds.key_id}" in refused.stderr


def test_init_with_identity_key_writes_nothing_when_the_registry_refuses(
    identity_registry: RegistryProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = home_env(home)
    token_file = tmp_path / "token.txt"
    token_file.write_text("not-the-token-of-this-registry\n")
    init = agent(env, "init", identity_registry.url, str(token_file), "--identity-key")
    assert init.returncode == 1
    assert "cannot register the key" in init.stderr
    assert "401" in init.stderr
    assert not official_path(home).exists()
    assert not (official_path(home).parent / CREDENTIALS_NAME).exists()
