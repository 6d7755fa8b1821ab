"""Fixtures for the integration tier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.localregistry.server import RunningRegistry
from agent.registry.client import RegistryClient
from tests.integration.agent_harness import AgentHarness
from tests.mosquitto import Mosquitto


@pytest.fixture
async def harness(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> AgentHarness:
    """A real agent (run on demand) against the in-process registry, test module installed."""
    return AgentHarness(local_registry, client, tmp_path / "agent")


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    """A real mosquitto broker on a free loopback port, password-protected, for one test."""
    async with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker
