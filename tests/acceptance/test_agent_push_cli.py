"""`istari-agent run` and `check` as processes, with push, pools and slots set by environment."""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from agent.protocol import push as protocol
from agent.protocol.push import State
from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.support.agentcli import agent, agent_env, running_agent
from tests.support.mosquitto import Mosquitto
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process
from tests.tools import module

DEADLINE = 30.0


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture
def pushing_registry(
    broker: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryProcess]:
    monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_USERNAME", broker.username)
    monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD", broker.password)
    reg = start_registry_process(
        tmp_path / "registry", secrets.token_urlsafe(32), "--mqtt-url", broker.url
    )
    yield reg
    stop_registry_process(reg)


def push_env(reg: RegistryProcess, broker: Mosquitto, root: Path, **more: str) -> dict[str, str]:
    module.install(root / "modules")
    values = {
        "MQTT_URL": broker.url,
        "MQTT_USERNAME": broker.username,
        "MQTT_PASSWORD": broker.password,
        **more,
    }
    extra = {f"ISTARI_DIGITAL_AGENT_{k}": v for k, v in values.items()}
    return {**agent_env(reg, root), **extra}


async def test_env_sets_push_pools_and_slots_for_a_real_agent_process(
    pushing_registry: RegistryProcess, broker: Mosquitto, tmp_path: Path
) -> None:
    reg = pushing_registry
    async with RegistryClient(reg.url, reg.token) as client:
        pool = await client.create_pool("workstations", None)
        await client.publish_module(module.manifest())
        env = push_env(
            reg,
            broker,
            tmp_path,
            AGENT_POOLS="workstations",
            MAX_CONCURRENT_JOBS="2",
            POLL_INTERVAL="3600",
            PUSH_POLL_INTERVAL="3600",
        )
        async with running_agent(env) as run:
            ready = await run.wait_for("agent.ready")
            await run.wait_for("push.registry_presence", state="online")
            model = tmp_path / "part.txt"
            model.write_text("model")
            jobs = [
                await submit(
                    client, Submission(model, module.fn("sleep"), {"seconds": 1}, pool_id=pool.id)
                )
                for _ in range(2)
            ]
            for job in jobs:
                claimed = await run.wait_for("job.claimed", job_id=job.id)
                assert claimed["woken_by"] in {"push", "more"}  # the second may follow the first
            await run.wait_for("job.tool_started", count=2)
            assert not [e for e in run.events if e["event"] == "job.finished"]  # two at once
            await run.wait_for("job.finished", count=2, status="Completed")
            run.process.send_signal(signal.SIGTERM)
            assert await run.process.wait() == 0
        assert (await client.get_agent(ready["agent_id"])).agent_pools == [pool.id]


def test_check_reports_the_broker_and_whether_the_registry_publishes_there(
    pushing_registry: RegistryProcess, broker: Mosquitto, tmp_path: Path
) -> None:
    env = push_env(pushing_registry, broker, tmp_path)
    ok = agent(env, "check")
    assert ok.returncode == 0, ok.stdout
    assert "accepts the agent and the registry publishes there" in ok.stdout

    wrong = agent({**env, "ISTARI_DIGITAL_AGENT_MQTT_PASSWORD": "nope"}, "check")
    assert wrong.returncode == 1
    assert "refused the agent's credentials: check mqtt_username and mqtt_password" in wrong.stdout
    assert broker.password not in wrong.stdout + wrong.stderr


async def test_presence_says_offline_on_a_clean_stop_and_by_the_will_on_a_kill(
    pushing_registry: RegistryProcess, broker: Mosquitto, tmp_path: Path
) -> None:
    env = push_env(pushing_registry, broker, tmp_path)
    async with broker.broker.client("test-presence-watcher") as watcher:
        await watcher.subscribe(protocol.agent_presence_topic("+"), qos=1)
        for stop in (signal.SIGTERM, signal.SIGKILL):
            async with running_agent(env) as run:
                assert await next_presence(watcher) is State.ONLINE
                run.process.send_signal(stop)
                assert await next_presence(watcher) is State.OFFLINE, stop
                assert await run.process.wait() == (0 if stop is signal.SIGTERM else -9)


async def next_presence(watcher: aiomqtt.Client) -> State | None:
    async with asyncio.timeout(DEADLINE):
        message = await anext(watcher.messages)
    assert isinstance(message.payload, bytes)
    return protocol.decode(message.payload).state
