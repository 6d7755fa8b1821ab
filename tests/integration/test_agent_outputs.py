"""Outputs that are models or new revisions, made by a real agent against the local registry.

`upload_as: model` makes a model linked to its job (`source_job_id`), which a lookup by job
finds (`GET /api/v2/models?source_job_id=`); `version_of: part` makes the output a new
revision of the model that filled `part`, the job's model. Neither is made twice when the
answer to its create is lost, nor when the agent is stopped between the create and the
journal note that it was made: the agent looks for its own upload first.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.registry.models import Job, Resource
from agent.stopping import Stop
from tests.integration.test_agent_jobs import last_message
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import watch_logs


async def _outputs(h: AgentHarness, job: Job) -> tuple[Resource, Resource]:
    """The job's model as it is now, and the one model the job created."""
    assert job.model_id is not None
    found = (await h.client.list_models(source_job_id=job.id)).items
    assert {r.id for r in found} >= {job.model_id}, "the revised model is found by the job"
    created = [r for r in found if r.id != job.model_id]
    assert len(created) == 1, [r.file.current.name for r in created]
    return await h.client.get_model(job.model_id), created[0]


async def _read_all(h: AgentHarness, resource: Resource) -> list[tuple[str | None, bytes]]:
    """Each revision's name and content, oldest first."""
    read = []
    for i, revision in enumerate(resource.file.revisions):
        one = resource.model_copy(update={"file": resource.file.model_copy(
            update={"revisions": resource.file.revisions[: i + 1]})})  # fmt: skip
        read.append((revision.name, await h.read(one)))
    return read


async def test_a_model_output_is_found_by_its_job_and_version_of_revises_the_jobs_model(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("derive", content=b"v1")
    other = await harness.submit("derive", content=b"w1", model_name="other.txt")
    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED] * 2

    done = await harness.job(job.id)
    model, derived = await _outputs(harness, done)
    assert await _read_all(harness, model) == [("part.txt", b"v1"), ("next-part.txt", b"next: v1")]
    assert await _read_all(harness, derived) == [("derived.txt", b"derived from v1")]
    assert derived.model_id is None  # a model of its own, not an artifact of the job's
    message = last_message(done)
    assert f"derived (model {derived.id})" in message
    assert f"next (revision {model.id})" in message
    # Under the job's model: only its log. The other job's outputs are the other job's.
    assert sorted(await harness.artifacts(done)) == [f"job-{job.id}.log"]
    other_model, other_derived = await _outputs(harness, await harness.job(other.id))
    assert other_derived.id != derived.id
    assert await _read_all(harness, other_model) == [
        ("other.txt", b"w1"), ("next-other.txt", b"next: w1")
    ]  # fmt: skip


async def test_version_of_a_parameter_fails_the_job_and_uploads_nothing(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("revise_label", {"label": "x"})
    assert [o.reason for o in await harness.run()] == [Reason.MANIFEST_ERROR]
    failed = await harness.job(job.id)
    assert failed.status is JobStatus.FAILED
    says = "output next is declared a new revision of input 'label' (version_of), but that is"
    assert (
        f"{says} an input of type parameter; it must name a user_model or user_link input"
        in last_message(failed)
    )
    assert failed.model_id is not None
    assert len((await harness.client.get_model(failed.model_id)).file.revisions) == 1
    assert (await harness.client.list_models(source_job_id=job.id)).items == []


@pytest.mark.parametrize("function", ["derive", "revise"])
async def test_a_job_canceled_while_uploading_has_its_model_and_revision_refused(
    harness: AgentHarness, function: str
) -> None:
    job = await harness.submit(function)
    assert job.model_id is not None
    harness.cancel_when_uploading(job.id)  # the model create or new revision: refused 409
    outcomes = await harness.run(upload_pool_size=1)  # derive: the model first
    assert [o.reason for o in outcomes] == [Reason.CANCELED_BY_USER]
    assert "the registry refused its outputs" in outcomes[0].message  # the 409 said so
    assert (await harness.job(job.id)).status is JobStatus.CANCELED
    assert (await harness.client.list_models(source_job_id=job.id)).items == []
    assert len((await harness.client.get_model(job.model_id)).file.revisions) == 1


async def test_lost_answers_to_a_model_create_and_a_new_revision_make_one_of_each(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    job = await faulty.submit("derive", content=b"v1")
    assert job.model_id is not None
    create_lost = proxy.inject(Fault("POST", r"/api/v2/models$", "drop_response"))
    # twice: aiohttp resends a PUT once on a dropped connection (the registry keeps one)
    proxy.inject(Fault("PUT", rf"/api/v2/models/{job.model_id}$", "drop_response", times=2))
    with watch_logs() as logs:
        assert [o.reason for o in await faulty.run()] == [Reason.COMPLETED]
    await proxy.wait_used(create_lost, timeout=1)
    assert proxy.hits("PUT", rf"/api/v2/models/{job.model_id}$") >= 1
    # Each was looked for, and found, before it was sent again.
    assert logs.find("job.output_found", file="derived.txt", kind="model")
    assert logs.find("job.output_found", file="next-part.txt", kind="revision", id=job.model_id)
    model, derived = await _outputs(faulty, await faulty.job(job.id))
    assert [r.name for r in model.file.revisions] == ["part.txt", "next-part.txt"]
    assert [r.name for r in derived.file.revisions] == ["derived.txt"]


def _cut_off(proxy: FaultProxy, job: Job, which: str) -> Any:
    """From Uploading on: the create (`which`: model or revision) is carried out but its
    answer lost, and every lookup that would find it fails; the rest goes through."""
    models = r"/api/v2/models$"
    model = rf"/api/v2/models/{job.model_id}$"

    def listen(event: str, details: dict[str, Any]) -> None:
        if event != "job.status" or details["status"] != JobStatus.UPLOADING:
            return
        if which == "model":
            proxy.inject(Fault("POST", models, "drop_response"))
            proxy.inject(Fault("GET", models, "status", times=10**6, status=503))
        else:
            proxy.inject(Fault("GET", model, "delay"))  # what it is (a model) is read first
            proxy.inject(Fault("PUT", model, "drop_response", times=2))
            proxy.inject(Fault("GET", model, "status", times=10**6, status=503))

    return listen


async def _cut_off_then_restarted(faulty: AgentHarness, proxy: FaultProxy, which: str) -> Job:
    """Run the job until the upload waits for the registry, let it go (SIGUSR2's detach:
    the journal keeps the revision, not the id), then start the agent again."""
    job = await faulty.submit("derive", content=b"v1")
    listen = _cut_off(proxy, job, which)
    faulty.registry.registry.listeners.append(listen)
    stop = Stop()
    with watch_logs() as logs:
        # One output at a time (derived first), so the cut-off one is the last one sent.
        first = asyncio.create_task(
            faulty.run(Mode.SERVE, stop=stop, retry_budget=0.3, upload_pool_size=1)
        )
        await logs.wait_for("job.waiting_for_registry", what="upload")
        stop.detach("test")
        assert await first == []
        faulty.registry.registry.listeners.remove(listen)
        proxy.clear()
        assert [o.reason for o in await faulty.run()] == [Reason.COMPLETED]
        assert logs.find("job.resuming", job_id=job.id, phase="Uploading")
        assert logs.find("job.output_found", kind="model" if which == "model" else "revision")
    return await faulty.job(job.id)


async def test_a_model_created_before_a_restart_is_found_not_made_again(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    done = await _cut_off_then_restarted(faulty, proxy, "model")
    assert proxy.hits("POST", r"/api/v2/models$") == 0  # since the restart: found, not re-sent
    model, derived = await _outputs(faulty, done)
    assert [r.name for r in derived.file.revisions] == ["derived.txt"]
    assert [r.name for r in model.file.revisions] == ["part.txt", "next-part.txt"]


async def test_a_revision_added_before_a_restart_is_found_not_added_again(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    done = await _cut_off_then_restarted(faulty, proxy, "revision")
    assert done.model_id is not None
    assert proxy.hits("PUT", rf"/api/v2/models/{done.model_id}$") == 0  # since the restart
    model, derived = await _outputs(faulty, done)
    assert await _read_all(faulty, model) == [("part.txt", b"v1"), ("next-part.txt", b"next: v1")]
    assert [r.name for r in derived.file.revisions] == ["derived.txt"]
