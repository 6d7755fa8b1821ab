"""Fixtures for the integration tier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.registry.client import RegistryClient
from agent.runs.store import RunRecords
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import FaultProxy
from tests.support.mosquitto import Mosquitto
from tests.support.push import mqtt_settings
from tests.support.runs_site import Site, populate, serving


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    """A real mosquitto broker on a free loopback port, password-protected, for one test."""
    async with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
async def push_registry(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[RunningRegistry]:
    """An in-process registry that publishes push notices to the test's broker."""
    settings = RegistrySettings(data_dir=tmp_path / "push-registry", mqtt=mosquitto.broker)
    async with running(settings) as reg:
        yield reg


@pytest.fixture
async def push_harness(
    push_registry: RunningRegistry, mosquitto: Mosquitto, tmp_path: Path
) -> AsyncIterator[AgentHarness]:
    """An agent harness whose agent takes push wake-ups from the test's broker."""
    async with RegistryClient(push_registry.url, push_registry.token) as c:
        yield AgentHarness(push_registry, c, tmp_path / "agent", overrides=mqtt_settings(mosquitto))


@pytest.fixture
async def faulty(proxy: FaultProxy, tmp_path: Path) -> AsyncIterator[AgentHarness]:
    """An agent harness whose agent reaches the registry only through `proxy`."""
    settings = RegistrySettings(data_dir=tmp_path / "registry", public_url=proxy.url)
    async with running(settings) as reg, RegistryClient(reg.url, reg.token) as client:
        proxy.upstream = reg.url
        yield AgentHarness(reg, client, tmp_path / "agent", registry_url=proxy.url)


@pytest.fixture
async def site(
    client: RegistryClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Site]:
    """Run records of three runs (finished, failed, running) served by a real listener."""
    records = RunRecords(tmp_path / "state" / "runs.sqlite3")
    runs = populate(records, monkeypatch, tmp_path)
    async with serving(records, client, runs) as s:
        yield s
    records.close()
