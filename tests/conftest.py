"""Fixtures shared by every tier: a local registry in-process or as a real subprocess."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import logs
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.registry.client import RegistryClient

logs.configure("info", json=False)

_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class RegistryProcess:
    """A `istari-agent registry serve` child process."""

    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[str]


def start_registry_process(data_dir: Path, token: str, *extra: str) -> RegistryProcess:
    """Start the registry CLI on a free port and wait for its 'listening on' line."""
    env = {**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": token}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "agent", "registry", "serve",
            "--port", "0", "--data-dir", str(data_dir), *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server prints its one line (or exits)
    match = _LISTENING.search(line)
    if match is None:
        proc.kill()
        proc.stdout.close()
        pytest.fail(f"registry did not start: {line!r}, exit code {proc.wait()}")
    return RegistryProcess(match.group(1), token, data_dir, proc)


def stop_registry_process(reg: RegistryProcess) -> None:
    """Stop a registry child process and wait for it."""
    reg.process.terminate()
    try:
        reg.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.process.kill()
        reg.process.wait()
    if reg.process.stdout is not None:
        reg.process.stdout.close()


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
