"""Fixtures more than one test directory uses: a local registry (in-process or a real child
process), a client for it, an agent harness against it, and a fault proxy.

Fixtures one directory alone uses live in its own conftest; helpers live in `tests/support/`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent import logs
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.registry.client import RegistryClient
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import FaultProxy
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process

logs.configure("info", json=False)


@pytest.fixture(scope="module")
def registry_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """A real registry process shared by a test module."""
    reg = start_registry_process(tmp_path_factory.mktemp("registry"), secrets.token_urlsafe(24))
    yield reg
    stop_registry_process(reg)


@pytest.fixture
async def local_registry(tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry served in this test's event loop, on a free port."""
    async with running(RegistrySettings(data_dir=tmp_path / "registry")) as reg:
        yield reg


@pytest.fixture
async def client(local_registry: RunningRegistry) -> AsyncIterator[RegistryClient]:
    """A registry client for the in-process registry."""
    async with RegistryClient(local_registry.url, local_registry.token) as c:
        yield c


@pytest.fixture
async def harness(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> AgentHarness:
    """A real agent (run on demand) against the in-process registry, test module installed."""
    return AgentHarness(local_registry, client, tmp_path / "agent")


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A fault proxy on a free loopback port; point its `upstream` at what it stands before."""
    async with FaultProxy() as p:
        yield p
