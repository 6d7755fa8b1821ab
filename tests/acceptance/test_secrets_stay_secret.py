"""A full run of a real agent process, logging at debug level, leaks none of its secrets.

The registry token and the MQTT password are distinctive random strings; the jobs download
their models and upload their outputs through presigned URLs (whose signatures must be
masked or left out). A fault proxy in front of the registry answers 500 to the first blob
transfers, so the agent logs retries naming those URLs. Every log line, the jobs' status
messages, and every file the agent wrote (work directory, state, journal) are searched for
the secrets.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.support.agentcli import agent_env
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.mosquitto import Mosquitto
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process
from tests.tools import module

_UNMASKED_SIGNATURE = re.compile(r"(?i)signature=(?!\*\*\*)[^&\s\"']+")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture
def registry(
    broker: Mosquitto, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RegistryProcess]:
    """The registry process, reached (API and blob URLs alike) through `proxy`."""
    monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_USERNAME", broker.username)
    monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD", broker.password)
    token = "tok-" + secrets.token_urlsafe(24)
    args = ("--mqtt-url", broker.url, "--public-url", proxy.url)
    reg = start_registry_process(tmp_path / "registry", token, *args)
    proxy.upstream = reg.url
    yield RegistryProcess(proxy.url, reg.token, reg.data_dir, reg.process)
    stop_registry_process(reg)


def files_under(root: Path, skip: tuple[Path, ...]) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not any(path.is_relative_to(s) for s in skip):
            yield path


async def test_no_secret_reaches_a_log_line_a_status_message_or_a_file(
    registry: RegistryProcess, broker: Mosquitto, proxy: FaultProxy, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    env = {
        **agent_env(registry, tmp_path),
        "ISTARI_DIGITAL_AGENT_MQTT_URL": broker.url,
        "ISTARI_DIGITAL_AGENT_MQTT_USERNAME": broker.username,
        "ISTARI_DIGITAL_AGENT_MQTT_PASSWORD": broker.password,
        "ISTARI_DIGITAL_AGENT_LOG_LEVEL": "debug",
        "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "always",
    }
    async with RegistryClient(registry.url, registry.token) as client:
        await client.publish_module(module.manifest())
        model = tmp_path / "part.txt"
        model.write_text("model")
        good = (await submit(client, Submission(model, module.fn("echo"), {"label": "x"}))).id
        bad = (await submit(client, Submission(model, module.fn("exit"), {"code": 3}))).id
    for method in ("GET", "PUT"):  # presigned blob URLs carry their signature in the query
        proxy.inject(Fault(method, r"^/blobs/", "status", times=1, status=500))
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--until-idle", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await agent.communicate()
    assert agent.returncode == 1, err[-2000:]  # one job failed on purpose
    assert proxy.hits("*", r"^/blobs/") >= 4  # the faults were met, then retried
    lines = (out + err).decode().splitlines()
    # The retries name the blob URLs (without their query, where the signature is).
    assert any("registry.retrying" in line and "/blobs/" in line for line in lines)
    async with RegistryClient(registry.url, registry.token) as client:
        jobs = [await client.get_job(good), await client.get_job(bad)]
    assert [j.status for j in jobs] == [JobStatus.COMPLETED, JobStatus.FAILED]
    lines += [e.message or "" for j in jobs for e in j.status_history]
    for secret in (registry.token, broker.password):
        assert not [line for line in lines if secret in line]
    assert not [line for line in lines if _UNMASKED_SIGNATURE.search(line)]

    skip = (tmp_path / "registry", tmp_path / "mosquitto")
    written = list(files_under(tmp_path, skip))
    assert any(p.name == "journal.sqlite3" for p in written)
    for path in written:
        data = path.read_bytes()
        for secret in (registry.token, broker.password):
            assert secret.encode() not in data, path
