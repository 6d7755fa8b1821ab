"""An archived job is withdrawn: no agent is offered it or may claim it, and a job an agent
holds cannot be archived under it (a job is never both Claimed and archived)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.registry import agent_with_module, submit_jobs


@pytest.fixture
async def http(local_registry: RunningRegistry) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {local_registry.token}"}
    async with aiohttp.ClientSession(local_registry.url, headers=headers) as session:
        yield session


async def _call(http: aiohttp.ClientSession, method: str, path: str) -> tuple[int, str]:
    async with http.request(method, path) as r:
        return r.status, await r.text()


async def _claim(http: aiohttp.ClientSession, job_id: str, agent_id: str) -> tuple[int, str]:
    path = f"/api/v2/jobs/{job_id}/status?status_name=Claimed&agent_id={agent_id}"
    return await _call(http, "PUT", path)


def _archived(reg: RunningRegistry, job_id: str) -> bool:
    row = reg.registry.conn.execute("SELECT archived FROM jobs WHERE id = ?", (job_id,))
    return bool(row.fetchone()["archived"])


async def test_an_archived_job_is_neither_offered_nor_claimable(
    local_registry: RunningRegistry,
    client: RegistryClient,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    (job,) = await submit_jobs(client, tmp_path, 1)
    agent = await agent_with_module(client)
    assert [j.id for j in (await client.available_jobs(agent)).items] == [job.id]
    assert (await _call(http, "DELETE", f"/api/v2/jobs/{job.id}"))[0] == 200
    assert (await client.available_jobs(agent)).items == []
    status, detail = await _claim(http, job.id, agent)
    assert status == 409
    assert "archived" in detail
    assert (await client.get_job(job.id)).status is JobStatus.PENDING
    # Restored, it is back in the queue.
    assert (await _call(http, "POST", f"/api/v2/jobs/{job.id}:restore"))[0] == 200
    assert [j.id for j in (await client.available_jobs(agent)).items] == [job.id]
    assert (await _claim(http, job.id, agent))[0] == 200


async def test_a_job_an_agent_holds_cannot_be_archived(
    local_registry: RunningRegistry,
    client: RegistryClient,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    (job,) = await submit_jobs(client, tmp_path, 1)
    agent = await agent_with_module(client)
    assert (await _claim(http, job.id, agent))[0] == 200
    for moved_to in (JobStatus.CLAIMED, JobStatus.RUNNING):
        if moved_to is not JobStatus.CLAIMED:
            await client.update_job_status(job.id, moved_to, agent)
        status, detail = await _call(http, "DELETE", f"/api/v2/jobs/{job.id}")
        assert status == 409
        assert moved_to.value in detail and "cancel" in detail
        assert not _archived(local_registry, job.id)
    # Once it has ended, it may be archived.
    await client.update_job_status(job.id, JobStatus.COMPLETED, agent)
    assert (await _call(http, "DELETE", f"/api/v2/jobs/{job.id}"))[0] == 200
    assert _archived(local_registry, job.id)
