"""Validating refuses a job for another module version than the one installed (unless the
setting allows it) and a job for a tool version the installed module does not list, saying
which versions are installed. Each test has its own registry: what it publishes stays there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.outcome import Reason
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.registry.transfer import upload_revision
from tests.support.agent_harness import AgentHarness
from tests.tools import module


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[AgentHarness]:
    """A harness against a registry of its own (not the module-scoped shared one)."""
    async with (
        running(RegistrySettings(data_dir=tmp_path / "own-registry")) as reg,
        RegistryClient(reg.url, reg.token) as client,
    ):
        yield AgentHarness(reg, client, tmp_path / "agent")


def install_version(harness: AgentHarness, **changes: Any) -> None:
    """Rewrite the installed manifest with `changes`."""
    path = harness.modules_path / "behaviours" / "module_manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


async def submit_for_tool(harness: AgentHarness, tool_version: str) -> Job:
    """Submit an echo job asking for `tool_version` (what `submit` does, with that hint)."""
    model_file = harness.root / "part.txt"
    model_file.write_text("hello")
    params_file = harness.root / "parameters.json"
    params_file.write_text(json.dumps({"label": "tool"}))
    client = harness.client
    model = await client.create_model(await upload_revision(client, model_file))
    params = await upload_revision(client, params_file)
    return await client.submit_job(model.id, module.fn("echo"), params, tool_version=tool_version)


def last_message(job: Job) -> str:
    return job.status_history[-1].message or ""


async def published_then_updated(harness: AgentHarness) -> Job:
    """A job submitted on 1.0.0; then 1.1.0 is published and installed on the agent."""
    job = await harness.submit("echo", {"label": "old"})
    await harness.client.publish_module({**module.manifest(), "module_version": "1.1.0"})
    install_version(harness, module_version="1.1.0")
    return job


async def test_a_job_for_another_module_version_is_refused_naming_both(
    fresh: AgentHarness,
) -> None:
    old = await published_then_updated(fresh)
    good = await fresh.submit("echo", {"label": "new"})  # resolves to 1.1.0, the newest

    outcomes = await fresh.run()

    assert sorted(o.reason for o in outcomes) == sorted([Reason.MANIFEST_ERROR, Reason.COMPLETED])
    failed = await fresh.job(old.id)
    assert failed.status is JobStatus.FAILED
    message = last_message(failed)
    assert "@test:behaviours 1.0.0" in message
    assert "@test:behaviours 1.1.0 installed" in message
    assert "allow_module_version_mismatch" in message
    assert (await fresh.job(good.id)).status is JobStatus.COMPLETED


async def test_the_setting_lets_a_job_run_on_the_installed_version(fresh: AgentHarness) -> None:
    old = await published_then_updated(fresh)
    outcomes = await fresh.run(allow_module_version_mismatch=True)
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert (await fresh.job(old.id)).status is JobStatus.COMPLETED


async def test_a_job_for_a_tool_version_not_installed_is_refused_listing_them(
    fresh: AgentHarness,
) -> None:
    # The registry's 1.0.0 offers tool versions 1 and 2; the installed 1.0.0 only 1.
    await fresh.client.publish_module({**module.manifest(), "tool_versions": ["1", "2"]})
    bad = await submit_for_tool(fresh, "2")
    fine = await submit_for_tool(fresh, "1")

    outcomes = await fresh.run()

    assert sorted(o.reason for o in outcomes) == sorted([Reason.MANIFEST_ERROR, Reason.COMPLETED])
    failed = await fresh.job(bad.id)
    assert failed.status is JobStatus.FAILED
    assert last_message(failed) == (
        "the job asks for tool version 2 of @test:echo; the installed @test:behaviours 1.0.0 has 1"
    )
    assert (await fresh.job(fine.id)).status is JobStatus.COMPLETED


async def test_a_function_published_for_other_tool_versions_only_is_refused(
    fresh: AgentHarness,
) -> None:
    """With no tool version named, the function's published list must meet the installed one."""
    await fresh.client.publish_module({**module.manifest(), "tool_versions": ["2", "3"]})
    job = await fresh.submit("echo", {"label": "x"})
    outcomes = await fresh.run()
    assert [o.reason for o in outcomes] == [Reason.MANIFEST_ERROR]
    assert "asks for tool versions 2, 3 of @test:echo" in last_message(await fresh.job(job.id))
    assert last_message(await fresh.job(job.id)).endswith("has 1")
