"""Fixtures for the integration tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.localregistry.server import RunningRegistry
from agent.registry.client import RegistryClient
from tests.integration.agent_harness import AgentHarness


@pytest.fixture
async def harness(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> AgentHarness:
    """A real agent (run on demand) against the in-process registry, test module installed."""
    return AgentHarness(local_registry, client, tmp_path / "agent")
