"""The agent's identity against the real local registry: the `agent_version` it reports, the
module ranges checked against it, and the API compatibility headers both ways."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from structlog.testing import capture_logs

from agent import __version__
from agent.check import check
from agent.jobs.outcome import Reason
from agent.protocol import compat
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.agent_harness import AgentHarness
from tests.tools import module
from tests.tools.module import MODULE

MANIFEST = "behaviours/module_manifest.json"


def set_range(harness: AgentHarness, agent_version: str) -> None:
    path = harness.modules_path / MANIFEST
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "agent_version": agent_version}))


async def raw_get(url: str, token: str, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
    auth = {"Authorization": f"Bearer {token}", **headers}
    async with aiohttp.ClientSession() as s, s.get(url, headers=auth) as resp:
        return await resp.json(), dict(resp.headers)


async def test_a_module_asking_for_agent_11_serves_a_job(harness: AgentHarness) -> None:
    set_range(harness, ">=11.0.0")
    job = await harness.submit("echo", {"label": "fine"})

    with capture_logs() as logs:
        outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert (await harness.job(job.id)).status is JobStatus.COMPLETED
    ready = next(e for e in logs if e["event"] == "agent.ready")
    assert (ready["agent_version"], ready["release"]) == ("11.10.3", __version__)
    assert ready["modules"] == [f"{MODULE}@{module.VERSION}"]
    verdict = next(e for e in logs if e["event"] == "registry.compatibility")
    assert (verdict["status"], verdict["log_level"]) == ("compatible", "info")
    assert verdict["registry_version"] == __version__


async def test_a_module_asking_for_a_later_agent_is_refused_and_its_job_waits(
    harness: AgentHarness,
) -> None:
    set_range(harness, ">=12.0.0")
    job = await harness.submit("echo", {"label": "fine"})

    with capture_logs() as logs:
        outcomes = await harness.run()

    assert outcomes == []
    assert (await harness.job(job.id)).status is JobStatus.PENDING
    (refused,) = [e for e in logs if e["event"] == "module.rejected"]
    assert refused["path"].endswith(MANIFEST)
    assert refused["field"] == "agent_version"
    assert "'>=12.0.0'" in refused["problem"]
    assert "reports 11.10.3" in refused["problem"]
    ready = next(e for e in logs if e["event"] == "agent.ready")
    assert ready["modules"] == []

    # The setting moves the reported version; the same module is then served.
    outcomes = await harness.run(agent_version="12.0.0")
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]


async def test_the_registry_answers_the_sdks_compatibility_headers(harness: AgentHarness) -> None:
    reg = harness.registry
    url = f"{reg.url}/api/v2/jobs"
    _, plain = await raw_get(url, reg.token, {})
    assert plain[compat.REGISTRY_VERSION] == __version__
    assert compat.COMPATIBILITY not in plain  # no hashes sent: nothing to judge

    _, good = await raw_get(url, reg.token, {compat.CLIENT_HASHES: compat.agent_header()})
    assert good[compat.COMPATIBILITY] == "compatible"

    old = {"v2_main:Agent": "b8c0169+5~0", "v2_main:Job": "0000000+1~0"}
    _, bad = await raw_get(url, reg.token, {compat.CLIENT_HASHES: compat.encode(old)})
    assert bad[compat.COMPATIBILITY] == "incompatible"
    assert bad[compat.INCOMPATIBLE_TAGS] == "v2_main:Job,v2_main:Agent"

    # Refusals carry the headers too (the SDK reads them from every answer).
    hashes = {compat.CLIENT_HASHES: compat.agent_header()}
    async with aiohttp.ClientSession() as s, s.get(url, headers=hashes) as resp:
        assert resp.status == 401
        assert resp.headers[compat.REGISTRY_VERSION] == __version__


async def test_the_agent_sends_its_hashes_and_reads_the_verdict(
    harness: AgentHarness,
) -> None:
    reg = harness.registry
    await harness.run()
    (agent,) = (await raw_get(f"{reg.url}/api/v2/agents", reg.token, {}))[0]["items"]
    info = agent["information_history"][-1]
    assert info["agent_version"] == "11.10.3"
    assert info["api_hashes"] == compat.agent_header()
    assert agent["compatibility_status"] == "compatible"

    async with RegistryClient(reg.url, reg.token) as client:
        assert client.compatibility is None
        await client.list_jobs(page=1, size=1)
        assert client.compatibility == compat.Verdict("compatible", __version__)
        client.api_hashes = compat.encode({"v2_main:Agent": "b8c0169+5~0"})
        await client.readiness()
        assert client.compatibility is not None
        assert client.compatibility.status == "revision-mismatch"
        assert client.compatibility.incompatible_tags == ("v2_main:Agent",)


async def test_check_reports_the_registrys_verdict(harness: AgentHarness) -> None:
    findings = await check(harness.settings())
    (finding,) = [f for f in findings if f.topic == "compatibility"]
    assert finding.ok
    assert finding.detail == f"registry {__version__}: this agent's API versions are compatible"
