"""A job whose resource is an artifact runs like one on a model (issue 22, item 1).

`Job.model_id` names the job's input resource, a model or an artifact (registry spec 3.5): the
agent reads it by kind, downloads its current revision as the model input, and uploads the
outputs under that same resource (spec 5.5: the parent may be a model or an artifact). A job
naming a resource that is neither fails with a message that says so.
"""

from __future__ import annotations

import json

from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.registry.models import Job, NewRevision
from agent.registry.transfer import upload_revision
from tests.integration.test_agent_jobs import GOOD, last_message, run_bad_then_good
from tests.support.agent_harness import AgentHarness
from tests.tools import module


async def _params(harness: AgentHarness, params: dict[str, object]) -> NewRevision:
    params_file = harness.root / "params.json"
    params_file.write_text(json.dumps(params))
    return await upload_revision(harness.client, params_file)


async def test_a_job_on_an_artifact_reads_it_and_uploads_under_it(harness: AgentHarness) -> None:
    first = await harness.submit("echo", GOOD, content=b"the model")
    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED]
    extracted = (await harness.artifacts(first))["copy-part.txt"]
    assert await harness.read(extracted) == b"the model"

    revision = await _params(harness, {"label": "second"})
    second = await harness.client.submit_job(extracted.id, module.fn("echo"), revision)
    assert second.model_id == extracted.id

    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED]
    done = await harness.job(second.id)
    assert done.status is JobStatus.COMPLETED
    outputs = await harness.artifacts(done)  # the artifacts under the artifact
    assert await harness.read(outputs["copy-copy-part.txt"]) == b"the model"
    record = json.loads(await harness.read(outputs["record.json"]))
    assert record["inputs"]["label"] == {"type": "parameter", "value": "second"}
    assert record["inputs"]["part"]["value"].endswith("/in/copy-part.txt")
    assert f"job-{second.id}.log" in outputs
    # The first job's outputs are where they were: nothing of the second landed on the model.
    assert sorted(await harness.artifacts(first)) == sorted(
        ["copy-part.txt", "record.json", f"job-{first.id}.log"]
    )


async def test_a_job_on_a_resource_that_is_neither_fails_saying_so(harness: AgentHarness) -> None:
    bad: Job = await harness.submit("echo", GOOD)
    # The local registry refuses such a submission; the real one accepts a "connected resource"
    # there (spec 3.5). Name the job itself: a resource that is neither a model nor an artifact.
    conn = harness.registry.registry.conn
    with conn:
        conn.execute("UPDATE jobs SET model_id = ? WHERE id = ?", (bad.id, bad.id))
    failed = await run_bad_then_good(harness, bad)
    assert failed.status is JobStatus.FAILED
    says = f"the job's resource {bad.id} is neither a model nor an artifact in the registry"
    assert says in last_message(failed)
