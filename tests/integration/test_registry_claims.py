"""Claims against the real local registry: exclusivity under concurrency, state moves."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import Conflict
from tests.support.registry import agent_with_module, submit_jobs


async def test_eight_clients_racing_for_200_jobs_claim_each_exactly_once(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    jobs = await submit_jobs(client, tmp_path, 200)
    agents = [await agent_with_module(client) for _ in range(8)]
    wins: Counter[str] = Counter()
    lost = resent = 0

    async def race(agent_id: str) -> None:
        nonlocal lost, resent
        # Each racer has its own connection pool, like a separate agent process.
        async with RegistryClient(local_registry.url, local_registry.token) as own:
            for job in jobs:  # everyone goes after every job, in the same order
                try:
                    await own.update_job_status(job.id, JobStatus.CLAIMED, agent_id)
                except Conflict as e:
                    lost += 1
                    resent += e.resent
                else:
                    wins[job.id] += 1

    await asyncio.gather(*(race(a) for a in agents))
    assert len(wins) == 200
    assert set(wins.values()) == {1}
    assert lost == 200 * 7
    assert resent == 0  # each 409 answered the one request sent: a lost race, no re-read needed
    claimed = await client.list_jobs(status_name="Claimed", size=100)
    assert claimed.total == 200


async def test_claimed_jobs_leave_available_jobs(client: RegistryClient, tmp_path: Path) -> None:
    jobs = await submit_jobs(client, tmp_path, 3)
    agent = await agent_with_module(client)
    offered = await client.available_jobs(agent, size=100)
    assert [j.id for j in offered.items] == [j.id for j in jobs]
    await client.update_job_status(jobs[1].id, JobStatus.CLAIMED, agent)
    offered = await client.available_jobs(agent, size=100)
    assert [j.id for j in offered.items] == [jobs[0].id, jobs[2].id]


async def test_only_the_claiming_agent_moves_the_job_on(
    client: RegistryClient, tmp_path: Path
) -> None:
    (job,) = await submit_jobs(client, tmp_path, 1)
    owner, other = await agent_with_module(client), await agent_with_module(client)
    await client.update_job_status(job.id, JobStatus.CLAIMED, owner)
    with pytest.raises(Conflict, match="claimed by another agent"):
        await client.update_job_status(job.id, JobStatus.RUNNING, other)
    moved = await client.update_job_status(job.id, JobStatus.RUNNING, owner, "started")
    assert moved.status is JobStatus.RUNNING
    assert moved.status_history[-1].message == "started"


async def test_terminal_jobs_never_move_again(client: RegistryClient, tmp_path: Path) -> None:
    (job,) = await submit_jobs(client, tmp_path, 1)
    agent = await agent_with_module(client)
    for status in (JobStatus.CLAIMED, JobStatus.RUNNING, JobStatus.COMPLETED):
        await client.update_job_status(job.id, status, agent)
    for status in JobStatus:
        with pytest.raises(Conflict):
            await client.update_job_status(job.id, status, agent)
    assert (await client.get_job(job.id)).status is JobStatus.COMPLETED


async def test_assignment_limits_who_is_offered_and_who_may_claim(
    client: RegistryClient, tmp_path: Path
) -> None:
    chosen, other = await agent_with_module(client), await agent_with_module(client)
    (job,) = await submit_jobs(client, tmp_path, 1, agent_id=chosen)
    assert [j.id for j in (await client.available_jobs(chosen)).items] == [job.id]
    assert (await client.available_jobs(other)).items == []
    with pytest.raises(Conflict, match="assigned to another agent"):
        await client.update_job_status(job.id, JobStatus.CLAIMED, other)


async def test_os_and_tool_version_requests_match_only_fitting_agents(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    await submit_jobs(client, tmp_path, 0)
    ubuntu = await agent_with_module(client, host_os="Ubuntu 22.04")
    rhel = await agent_with_module(client, host_os="RHEL 9")
    model = (await submit_jobs(client, tmp_path, 1))[0].model_id
    assert model is not None
    status, body = await _raw_submit(
        local_registry, client, model, "operating_system=Ubuntu%2022.04"
    )
    assert status == 200, body
    assert body["id"] in {j.id for j in (await client.available_jobs(ubuntu, size=100)).items}
    assert body["id"] not in {j.id for j in (await client.available_jobs(rhel, size=100)).items}
    status, body = await _raw_submit(local_registry, client, model, "tool_version=2")
    assert status == 404, body
    assert "no published function" in body["detail"]


async def _raw_submit(
    reg: RunningRegistry, client: RegistryClient, model_id: str, query: str
) -> tuple[int, dict[str, Any]]:
    from agent.registry.transfer import upload_revision

    params = Path(reg.registry.blobs.root.parent / "p.json")
    params.write_text("{}")
    rev = await upload_revision(client, params)
    url = f"{reg.url}/api/v2/models/{model_id}/jobs?function_name=@test:echo&{query}"
    async with client.session.post(
        url, json={"revision": rev.model_dump()}, headers={"Authorization": f"Bearer {reg.token}"}
    ) as resp:
        return resp.status, await resp.json()
