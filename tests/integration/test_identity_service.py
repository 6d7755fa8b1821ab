"""Identity-service mode end to end against the local registry: keys registered with
`POST /api/v2/key/agent`, client assertions exchanged for access tokens, by the official SDK's
own identity client and by our agent, tokens renewed before they expire, and a refused key
stopping the agent with one line that says what to do."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.auth.identity import IdentityAuth, IdentityRefused, load_credentials
from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.localregistry.store import identity_keys
from agent.protocol import identity as rules
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import Unauthorized
from agent.secretfiles import write_secret
from tests.support.agent_harness import AgentHarness, serving
from tests.support.logwatch import until


async def register_key(
    reg: RunningRegistry, token: str, **extra: Any
) -> tuple[aiohttp.ClientResponse, dict[str, Any], rules.Credentials | None]:
    """Register a fresh P-384 key with `token`; the answer and the credentials it makes."""
    key = rules.new_private_key()
    body = {"public_key_pem": rules.public_pem(key), "key_id": "key-1", **extra}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{reg.url}/api/v2/key/agent", json=body, headers=headers) as resp,
    ):
        answer = await resp.json()
    if resp.status != 200:
        return resp, answer, None
    return resp, answer, rules.Credentials(answer["client_id"], answer["key_id"], key)


def credentials_file(tmp_path: Path, creds: rules.Credentials) -> Path:
    path = tmp_path / "identity.json"
    write_secret(path, creds.to_json())
    return path


@pytest.fixture
async def short_lived(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry whose access tokens live 4 seconds (renewed after 3)."""
    settings = RegistrySettings(data_dir=tmp_path / "registry", access_token_ttl=4)
    async with running(settings) as reg:
        yield reg


async def test_key_registration_answers_an_agent_credential(
    local_registry: RunningRegistry,
) -> None:
    resp, answer, creds = await register_key(local_registry, local_registry.token, key_name="")
    assert resp.status == 200
    assert set(answer) == {"client_id", "user_uuid", "tenant_id", "key_id", "key_name"}
    assert answer["key_id"] == answer["key_name"] == "key-1"  # a blank key_name is the key id
    assert creds is not None


async def test_key_registration_refuses_bad_keys_and_anonymous_callers(
    local_registry: RunningRegistry,
) -> None:
    resp, _, _ = await register_key(local_registry, "not-a-token")
    assert resp.status == 401
    body = {"public_key_pem": "nope", "key_id": "k"}
    headers = {"Authorization": f"Bearer {local_registry.token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{local_registry.url}/api/v2/key/agent", json=body, headers=headers) as r,
    ):
        assert r.status == 422
        assert "public_key_pem" in str(await r.json())


def sdk_login_and_list(url: str, secret_file: Path) -> tuple[str, list[Any]]:
    """The official SDK, in identity-service mode, against `url` (blocking)."""
    istari = pytest.importorskip("istari_digital_client")
    from istari_digital_client.identity.auth.identity_service import IdentityServiceClient

    token = IdentityServiceClient(f"{url}/identity", str(secret_file)).get_token()
    for name in ("ISTARI_DIGITAL_API_URL", "ISTARI_REGISTRY_AUTH_TOKEN"):
        os.environ.pop(name, None)
    config = istari.Configuration(
        registry_url=url,
        identity_url=f"{url}/identity",
        identity_service_secret_file=str(secret_file),
        identity_api_version="auto",
    )
    agents = istari.Client(config).list_agents(page=1, size=10)
    return token, list(agents.items)


async def test_the_sdks_identity_client_logs_in_and_calls_the_registry(
    local_registry: RunningRegistry, tmp_path: Path
) -> None:
    _, _, creds = await register_key(local_registry, local_registry.token)
    assert creds is not None
    path = credentials_file(tmp_path, creds)

    token, agents = await asyncio.to_thread(sdk_login_and_list, local_registry.url, path)

    assert token.count(".") == 2
    assert agents == []  # an authenticated call answered (no agent registered yet)
    async with RegistryClient(local_registry.url, token) as client:  # our client, same token
        assert (await client.list_jobs(page=1, size=1)).items == []


async def test_an_agent_with_a_key_registers_and_runs_a_job(
    harness: AgentHarness, tmp_path: Path
) -> None:
    _, _, creds = await register_key(harness.registry, harness.registry.token)
    assert creds is not None
    job = await harness.submit("echo", {"label": "by key"})

    outcomes = await harness.run(
        Mode.ONCE,
        registry_api_token=None,
        registry_api_credentials_file=credentials_file(tmp_path, creds),
    )

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    done = await harness.job(job.id)
    assert done.status is JobStatus.COMPLETED
    row = identity_keys.find(harness.registry.registry.conn, creds.client_id, creds.key_id)
    assert row is not None
    agent_id = done.status_history[-1].agent_id
    assert agent_id is not None
    made_by = harness.registry.registry.conn.execute(
        "SELECT created_by_id FROM agents WHERE id = ?", (agent_id,)
    ).fetchone()[0]
    assert made_by == row["user_id"]  # registered as the key's principal


async def test_inline_base64_credentials_work_too(short_lived: RunningRegistry) -> None:
    _, _, creds = await register_key(short_lived, short_lived.token)
    assert creds is not None
    loaded = load_credentials(base64.b64encode(creds.to_json()).decode(), None)
    auth = IdentityAuth(loaded, f"{short_lived.url}/identity", "registry_api_credentials")
    async with RegistryClient(short_lived.url, auth) as client:
        assert (await client.list_jobs(page=1, size=1)).total == 0


async def test_tokens_are_renewed_before_they_expire(
    short_lived: RunningRegistry, tmp_path: Path
) -> None:
    _, _, creds = await register_key(short_lived, short_lived.token)
    assert creds is not None
    now = [0.0]  # the agent's clock, moved by the test: no waiting on real time for renewal
    auth = IdentityAuth(creds, f"{short_lived.url}/identity", "x", clock=lambda: now[0])
    async with RegistryClient(short_lived.url, auth) as client:
        session = client.session
        first = await auth.bearer(session)
        now[0] = 2.9  # before the renewal point (lifetime 4 s, margin 1 s): the same token
        assert await auth.bearer(session) == first
        now[0] = 3.1  # inside the last quarter of its life: renewed before it expires
        second = await auth.bearer(session)
        assert second != first
        await client.list_jobs(page=1, size=1)  # the renewed token is accepted
    # The registry really does stop taking a token at its expiry (4 s), whatever the agent
    # does: waited for with a deadline, polling the registry's answer.
    deadline = time.monotonic() + 10
    async with RegistryClient(short_lived.url, first) as old:
        while True:
            try:
                await old.list_jobs(page=1, size=1)
            except Unauthorized:
                break
            assert time.monotonic() < deadline, "an expired access token was still accepted"
            await asyncio.sleep(0.2)


async def test_an_expired_key_stops_the_agent_with_one_clear_line(
    harness: AgentHarness, tmp_path: Path
) -> None:
    _, _, creds = await register_key(harness.registry, harness.registry.token)
    assert creds is not None
    conn = harness.registry.registry.conn
    assert identity_keys.set_expires(conn, creds.client_id, creds.key_id, int(time.time()) - 1)
    path = credentials_file(tmp_path, creds)

    with pytest.raises(IdentityRefused) as refused:
        await harness.run(Mode.ONCE, registry_api_token=None, registry_api_credentials_file=path)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("registry_api_credentials_file: ")
    assert f"refused key {creds.key_id} of client {creds.client_id}" in message
    assert "has expired" in message
    assert "register a new key" in message


async def test_an_unknown_key_is_refused_the_same_way(
    harness: AgentHarness, tmp_path: Path
) -> None:
    creds = rules.Credentials("agent-unknown", "key-x", rules.new_private_key())
    path = credentials_file(tmp_path, creds)
    with pytest.raises(IdentityRefused, match="no key key-x is registered"):
        await harness.run(Mode.ONCE, registry_api_token=None, registry_api_credentials_file=path)


async def test_a_readable_credentials_file_is_refused(
    harness: AgentHarness, tmp_path: Path
) -> None:
    creds = rules.Credentials("c", "k", rules.new_private_key())
    path = credentials_file(tmp_path, creds)
    path.chmod(0o644)
    with pytest.raises(Exception, match=r"registry_api_credentials_file: .*chmod 600"):
        await harness.run(Mode.ONCE, registry_api_token=None, registry_api_credentials_file=path)


async def test_a_serving_agent_renews_its_token_and_keeps_working(
    short_lived: RunningRegistry, tmp_path: Path
) -> None:
    _, _, creds = await register_key(short_lived, short_lived.token)
    assert creds is not None
    path = credentials_file(tmp_path, creds)
    issued = short_lived.registry.identity
    async with RegistryClient(short_lived.url, short_lived.token) as admin:
        harness = AgentHarness(short_lived, admin, tmp_path / "agent")
        overrides = {"registry_api_token": None, "registry_api_credentials_file": path}
        async with serving(harness, **overrides):
            await until(lambda: _at_least(issued.issued, 1))
            first = issued.issued
            # Tokens live 4 s and are renewed after 3: wait for a renewal, then for a job run
            # with the renewed token (the agent polls every 0.2 s, so it calls all the while).
            await until(lambda: _at_least(issued.issued, first + 1), deadline=15)
            job = await harness.submit("echo", {"label": "after renewal"})

            async def done() -> bool:
                return (await harness.job(job.id)).status is JobStatus.COMPLETED

            await until(done)


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted
