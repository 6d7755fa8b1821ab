"""The local registry's push notices, published to a real mosquitto and read by a subscriber."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from structlog.testing import capture_logs

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.protocol import push as protocol
from agent.protocol.push import Event, Notice, State
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.logwatch import watch_logs
from tests.support.mosquitto import Mosquitto
from tests.support.registry import agent_with_module, submit_jobs

# Reconnects wait a jittered backoff (0.25 s at first, doubling) on top of a broker restart.
DEADLINE = 10.0


@asynccontextmanager
async def subscribed(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    """A test client subscribed to every version-1 topic."""
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        timeout=DEADLINE,
    ) as client:
        await client.subscribe(f"{protocol.ROOT}/#", qos=1)
        yield client


async def expect(
    client: aiomqtt.Client, topic: str, event: Event, job_id: str | None = None
) -> aiomqtt.Message:
    """The first message of `event` on `topic` (for `job_id` if given), skipping others."""
    async with asyncio.timeout(DEADLINE):
        async for message in client.messages:
            notice = _notice(message)
            if (
                message.topic.matches(topic)
                and notice.event is event
                and (job_id is None or notice.job_id == job_id)
            ):
                return message
    pytest.fail("the subscription ended")  # pragma: no cover - it only ends by raising


async def expect_presence(client: aiomqtt.Client, state: State) -> aiomqtt.Message:
    """The next registry presence message saying `state`."""
    async with asyncio.timeout(DEADLINE):
        async for message in client.messages:
            if (
                message.topic.matches(protocol.REGISTRY_PRESENCE)
                and _notice(message).state is state
            ):
                return message
    pytest.fail("the subscription ended")  # pragma: no cover - it only ends by raising


def _notice(message: aiomqtt.Message) -> Notice:
    assert isinstance(message.payload, bytes)
    return protocol.decode(message.payload)


def _settings(tmp_path: Path, mosquitto: Mosquitto) -> RegistrySettings:
    return RegistrySettings(data_dir=tmp_path / "registry", mqtt=mosquitto.broker)


@pytest.fixture
async def pushing(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry publishing to the test broker."""
    async with running(_settings(tmp_path, mosquitto)) as reg:
        yield reg


@pytest.fixture
async def watcher(mosquitto: Mosquitto, pushing: RunningRegistry) -> AsyncIterator[aiomqtt.Client]:
    """A subscriber that has seen the registry online, so every later change reaches it."""
    async with subscribed(mosquitto) as client:
        await expect_presence(client, State.ONLINE)
        yield client


@pytest.fixture
async def api(pushing: RunningRegistry) -> AsyncIterator[RegistryClient]:
    """A registry client for the publishing registry."""
    async with RegistryClient(pushing.url, pushing.token) as c:
        yield c


async def _call(reg: RunningRegistry, method: str, path: str, body: object = None) -> None:
    """A route the typed client has no method for (assignment, archive, restore)."""
    headers = {"Authorization": f"Bearer {reg.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.request(method, reg.url + path, json=body) as response,
    ):
        assert response.status == 200, await response.text()


async def test_registry_presence_is_retained_online(
    mosquitto: Mosquitto, watcher: aiomqtt.Client
) -> None:
    async with subscribed(mosquitto) as late:
        message = await expect_presence(late, State.ONLINE)
    assert message.retain


async def test_submitted_jobs_are_announced_where_they_can_be_claimed(
    watcher: aiomqtt.Client, api: RegistryClient, tmp_path: Path
) -> None:
    agent = await agent_with_module(api)
    pool = (await api.create_pool("push")).id
    (anyone,) = await submit_jobs(api, tmp_path, 1)
    (mine,) = await submit_jobs(api, tmp_path, 1, agent_id=agent)
    (pooled,) = await submit_jobs(api, tmp_path, 1, pool_id=pool)
    message = await expect(watcher, protocol.BROADCAST, Event.JOB_AVAILABLE, anyone.id)
    assert message.qos == 1
    assert not message.retain
    await expect(watcher, protocol.agent_topic(agent), Event.JOB_AVAILABLE, mine.id)
    await expect(watcher, protocol.pool_topic(pool), Event.JOB_AVAILABLE, pooled.id)


async def test_status_moves_reach_the_holder(
    watcher: aiomqtt.Client, api: RegistryClient, tmp_path: Path
) -> None:
    (job,) = await submit_jobs(api, tmp_path, 1)
    agent = await agent_with_module(api)
    await api.update_job_status(job.id, JobStatus.CLAIMED, agent)
    claimed = await expect(watcher, protocol.agent_topic(agent), Event.JOB_STATUS, job.id)
    assert _notice(claimed).status == JobStatus.CLAIMED
    await api.update_job_status(job.id, JobStatus.CANCELED, None)  # as an administrator
    canceled = await expect(watcher, protocol.agent_topic(agent), Event.JOB_STATUS, job.id)
    assert _notice(canceled).status == JobStatus.CANCELED


async def test_a_job_handed_back_is_available_again(
    watcher: aiomqtt.Client, api: RegistryClient, tmp_path: Path
) -> None:
    (job,) = await submit_jobs(api, tmp_path, 1)
    await expect(watcher, protocol.BROADCAST, Event.JOB_AVAILABLE, job.id)
    agent = await agent_with_module(api)
    await api.update_job_status(job.id, JobStatus.CLAIMED, agent)
    await api.update_job_status(job.id, JobStatus.PENDING, agent)
    await expect(watcher, protocol.BROADCAST, Event.JOB_AVAILABLE, job.id)


async def test_reassigned_and_restored_jobs_are_announced_to_their_new_claimants(
    watcher: aiomqtt.Client, api: RegistryClient, pushing: RunningRegistry, tmp_path: Path
) -> None:
    (job,) = await submit_jobs(api, tmp_path, 1)
    agent = await agent_with_module(api)
    pool = (await api.create_pool("push")).id
    path = f"/api/v2/jobs/{job.id}"
    await _call(pushing, "PUT", f"{path}/assigned_agent_pool", {"agent_pool_id": pool})
    await expect(watcher, protocol.pool_topic(pool), Event.JOB_AVAILABLE, job.id)
    # Both columns are read back: the agent assignment now wins over the pool's.
    await _call(pushing, "PUT", f"{path}/assigned_agent", {"agent_id": agent})
    await expect(watcher, protocol.agent_topic(agent), Event.JOB_AVAILABLE, job.id)
    await _call(pushing, "DELETE", f"{path}/assigned_agent")
    await expect(watcher, protocol.pool_topic(pool), Event.JOB_AVAILABLE, job.id)
    await _call(pushing, "DELETE", path)
    await _call(pushing, "POST", f"{path}:restore")
    await expect(watcher, protocol.pool_topic(pool), Event.JOB_AVAILABLE, job.id)


async def test_a_new_pool_member_is_told_to_look(
    watcher: aiomqtt.Client, api: RegistryClient
) -> None:
    agent = await agent_with_module(api)
    pool = (await api.create_pool("push")).id
    await api.add_pool_agent(pool, agent)
    notice = _notice(await expect(watcher, protocol.agent_topic(agent), Event.JOB_AVAILABLE))
    assert notice.job_id is None


async def test_stopping_leaves_the_registry_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with subscribed(mosquitto) as client:
        async with running(_settings(tmp_path, mosquitto)) as first:
            await expect_presence(client, State.ONLINE)
        await expect_presence(client, State.OFFLINE)
        async with subscribed(mosquitto) as late:
            message = await expect_presence(late, State.OFFLINE)
        assert message.retain
        async with running(_settings(tmp_path, mosquitto)) as again:
            await expect_presence(client, State.ONLINE)
    # The same data directory is the same MQTT client, so a restart takes over the session.
    assert first.notifier is not None and again.notifier is not None
    assert first.notifier.identifier == again.notifier.identifier
    assert first.notifier.identifier.startswith("istari-registry-")


async def test_the_registry_reconnects_after_a_broker_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        async with running(_settings(tmp_path, mosquitto)):
            async with subscribed(mosquitto) as client:
                await expect_presence(client, State.ONLINE)
            await mosquitto.stop()
            await mosquitto.start()  # nothing is persisted: no retained presence survives this
            async with subscribed(mosquitto) as client:
                await expect_presence(client, State.ONLINE)
    events = [e["event"] for e in logs if e["event"].startswith("registry.push")]
    assert events == [
        "registry.push_connected",
        "registry.push_unavailable",
        "registry.push_reconnected",
    ]
    (unavailable,) = (e for e in logs if e["event"] == "registry.push_unavailable")
    assert unavailable["log_level"] == "warning"
    assert unavailable["broker"] == mosquitto.url
    assert mosquitto.password not in str(logs)


async def test_a_registry_started_without_its_broker_serves_and_connects_later(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    await mosquitto.stop()
    with watch_logs() as logs:
        async with running(_settings(tmp_path, mosquitto)) as reg:
            async with RegistryClient(reg.url, reg.token) as api:
                await api.readiness()
                await submit_jobs(api, tmp_path, 1)  # its notice is dropped, not queued
            await logs.wait_for("registry.push_unavailable")
            await mosquitto.start()
            async with subscribed(mosquitto) as client:
                await expect_presence(client, State.ONLINE)
    events = [e["event"] for e in logs.entries if e["event"].startswith("registry.push_")]
    assert events == ["registry.push_unavailable", "registry.push_connected"]
