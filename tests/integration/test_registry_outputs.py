"""The local registry's side of job outputs: linked to their job, found by it, refused late.

An upload with `source_job_id` (a new model, a new artifact, or a new revision of either) is
linked to that job, listed by `GET /api/v2/models?source_job_id=` (and the artifact listings),
and refused with 409 once the job is canceled or over; the same new revision sent twice (a
resent PUT) is kept once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import Conflict
from agent.registry.models import Job, NewAgent, NewRevision, Resource
from agent.registry.transfer import upload_revision
from tests.support.agent_harness import AgentHarness
from tests.tools import module


async def _revision(client: RegistryClient, tmp_path: Path, name: str, text: str) -> NewRevision:
    path = tmp_path / "files" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return await upload_revision(client, path)


async def _job(harness: AgentHarness) -> tuple[Job, Resource]:
    job = await harness.submit("echo", {"label": "x"})
    assert job.model_id is not None
    return job, await harness.client.get_model(job.model_id)


async def test_models_are_found_by_the_job_that_created_or_revised_them(
    harness: AgentHarness, tmp_path: Path
) -> None:
    client = harness.client
    (job, model), (other, _) = await _job(harness), await _job(harness)
    made = await client.create_model(await _revision(client, tmp_path, "a.txt", "a"), job.id)
    await client.create_model(await _revision(client, tmp_path, "b.txt", "b"), other.id)
    await client.create_model(await _revision(client, tmp_path, "c.txt", "c"))  # no job
    revised = await client.update_model(
        model.id, await _revision(client, tmp_path, "part-2.txt", "2"), source_job_id=job.id
    )
    assert [r.name for r in revised.file.revisions] == ["part.txt", "part-2.txt"]

    found = await client.list_models(source_job_id=job.id)
    assert {r.id for r in found.items} == {made.id, model.id}  # created, and revised
    assert found.total == 2
    assert made.id not in {r.id for r in (await client.list_models(source_job_id=other.id)).items}
    everything = await client.list_models(size=100)
    assert len(everything.items) == 5  # two jobs' models, two outputs, one without a job


async def test_artifacts_and_their_revisions_are_found_by_their_job(
    harness: AgentHarness, tmp_path: Path
) -> None:
    client = harness.client
    (job, model), (other, _) = await _job(harness), await _job(harness)
    mine = await client.create_artifact(
        model.id, await _revision(client, tmp_path, "a.txt", "a"), source_job_id=job.id
    )
    theirs = await client.create_artifact(
        model.id, await _revision(client, tmp_path, "b.txt", "b"), source_job_id=None
    )
    await client.update_artifact(
        theirs.id, await _revision(client, tmp_path, "b2.txt", "b2"), source_job_id=other.id
    )
    path = f"/api/v2/models/{model.id}/artifacts"
    for route in (path, "/api/v2/artifacts"):
        page = await client._call("GET", route, params={"source_job_id": other.id})
        assert [a["id"] for a in page["items"]] == [theirs.id]
    assert {a.id for a in (await client.list_artifacts(model.id)).items} == {mine.id, theirs.id}


@pytest.mark.parametrize("status", [JobStatus.CANCELED, JobStatus.FAILED])
async def test_outputs_of_a_canceled_or_ended_job_are_refused_with_409(
    harness: AgentHarness, tmp_path: Path, status: JobStatus
) -> None:
    client = harness.client
    job, model = await _job(harness)
    artifact = await client.create_artifact(
        model.id, await _revision(client, tmp_path, "a.txt", "a"), source_job_id=None
    )
    await _end(harness.client, job, status)
    late = await _revision(client, tmp_path, "late.txt", "too late")
    with pytest.raises(Conflict, match="canceled" if status is JobStatus.CANCELED else "already"):
        await client.create_model(late, source_job_id=job.id)
    with pytest.raises(Conflict):
        await client.update_model(model.id, late, source_job_id=job.id)
    with pytest.raises(Conflict):
        await client.update_artifact(artifact.id, late, source_job_id=job.id)
    assert len((await client.get_model(model.id)).file.revisions) == 1
    assert len((await client.get_artifact(artifact.id)).file.revisions) == 1
    assert (await client.list_models(source_job_id=job.id)).items == []


async def _end(client: RegistryClient, job: Job, status: JobStatus) -> None:
    """Cancel the job (as a user does), or claim it and fail it (as an agent does)."""
    if status is JobStatus.CANCELED:
        await client.update_job_status(job.id, status, None)
        return
    agent = await client.register_agent(NewAgent(agent_version="1.0.0", host_os=module.HOST_OS))
    await client.update_job_status(job.id, JobStatus.CLAIMED, agent.id)
    await client.update_job_status(job.id, status, agent.id)


async def test_the_same_new_revision_sent_twice_is_kept_once(
    harness: AgentHarness, tmp_path: Path
) -> None:
    client = harness.client
    job, model = await _job(harness)
    revision = await _revision(client, tmp_path, "part-2.txt", "2")
    first = await client.update_model(model.id, revision, source_job_id=job.id)
    again = await client.update_model(model.id, revision, source_job_id=job.id)  # a resend
    assert [r.id for r in again.file.revisions] == [r.id for r in first.file.revisions]
    assert len(again.file.revisions) == 2
    # Not a no-op: the same content under a new salt (another upload), or an older revision.
    renewed = await client.update_model(
        model.id, await _revision(client, tmp_path, "part-2.txt", "2"), source_job_id=job.id
    )
    assert len(renewed.file.revisions) == 3
