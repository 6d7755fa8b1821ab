"""Push over TLS: a broker that verifies client certificates, the agent with a CA and its cert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.registry.client import RegistryClient
from tests.support.agent_harness import AgentHarness, serving
from tests.support.certs import Pki, make_pki
from tests.support.logwatch import watch_logs
from tests.support.mosquitto import Mosquitto
from tests.support.push import PUSH_ONLY, claimed_by_push, settled


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path / "mosquitto", tls=make_pki(tmp_path / "pki")) as broker:
        yield broker


@pytest.fixture
async def tls_harness(tls_broker: Mosquitto, tmp_path: Path) -> AsyncIterator[AgentHarness]:
    settings = RegistrySettings(data_dir=tmp_path / "registry", mqtt=tls_broker.broker)
    async with running(settings) as reg, RegistryClient(reg.url, reg.token) as client:
        yield AgentHarness(reg, client, tmp_path / "agent")


def tls_settings(broker: Mosquitto, *, client_cert: bool = True) -> dict[str, Any]:
    pki = broker.tls
    assert isinstance(pki, Pki)
    certs = {"mqtt_cert_file": pki.client_cert, "mqtt_key_file": pki.client_key}
    return {
        "mqtt_url": broker.url,
        "mqtt_username": broker.username,
        "mqtt_password": broker.password,
        "mqtt_ca_file": pki.ca,
        **(certs if client_cert else {}),
    }


async def test_push_works_over_tls_with_a_client_certificate(
    tls_harness: AgentHarness, tls_broker: Mosquitto
) -> None:
    assert tls_broker.url.startswith("mqtts://")
    with watch_logs() as logs:
        async with serving(tls_harness, **PUSH_ONLY, **tls_settings(tls_broker)):
            await settled(logs)
            assert await claimed_by_push(tls_harness, logs) == "push"


async def test_without_its_client_certificate_the_agent_is_refused_and_polls(
    tls_harness: AgentHarness, tls_broker: Mosquitto
) -> None:
    with watch_logs() as logs:
        async with serving(
            tls_harness, poll_interval=0.2, **tls_settings(tls_broker, client_cert=False)
        ):
            await logs.wait_for("push.unavailable")
            assert await claimed_by_push(tls_harness, logs) in {"poll", "start"}
