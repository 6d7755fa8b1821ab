"""`user_link` inputs with a real agent and the real local registry (issue 22, item 1).

A link's value is the absolute path of its downloaded metadata file,
`<work dir>/in/<name>.istari_<tool_key>_metadata_<kind>`. It comes from the job's resource when
that file fits the link's validators, or from a model or artifact id in the parameters. The
`@test:link` tool copies the file it was given to an output and records its input document, so
each test reads back what the tool saw. A link that fits no validator fails its job, saying
why, and the agent goes on to the next.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.registry.models import Job, Resource
from agent.registry.transfer import upload_revision
from tests.integration.test_agent_jobs import last_message, run_bad_then_good
from tests.support.agent_harness import AgentHarness

DECK = "deck.istari_behaviours_metadata_presentation"
METADATA = b'{"file_id": "1AbC", "kind": "presentation", "title": "Design review"}'


async def _resource(harness: AgentHarness, name: str, content: bytes, kind: str) -> Resource:
    """A model (or an artifact on a fresh model) in the registry holding `content` as `name`."""
    path = harness.root / "resources" / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    revision = await upload_revision(harness.client, path)
    if kind == "model":
        return await harness.client.create_model(revision)
    parent = await harness.client.create_model(revision)
    return await harness.client.create_artifact(parent.id, revision, None)


async def _seen(harness: AgentHarness, job: Job) -> tuple[bytes, dict[str, Any]]:
    """What the link tool was given: the bytes of its `sheet` file, and its input document."""
    artifacts = await harness.artifacts(job)
    record = json.loads(await harness.read(artifacts["record.json"]))
    return await harness.read(artifacts["seen.bin"]), record["inputs"]


async def test_a_job_on_a_metadata_file_gives_it_to_the_user_link_input(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("link", {}, model_name=DECK, content=METADATA)

    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED]

    assert (await harness.job(job.id)).status is JobStatus.COMPLETED
    seen, inputs = await _seen(harness, job)
    assert seen == METADATA
    path = harness.workdir(job) / "in" / DECK
    assert inputs == {"sheet": {"type": "user_link", "value": str(path)}}  # `part` is optional
    assert Path(inputs["sheet"]["value"]).is_absolute()


@pytest.mark.parametrize("kind", ["model", "artifact"])
async def test_a_user_link_given_by_id_in_the_parameters_is_downloaded(
    harness: AgentHarness, kind: str
) -> None:
    sheet = "budget.istari_behaviours_metadata_sheet"
    linked = await _resource(harness, sheet, METADATA, kind)
    job = await harness.submit("link", {"sheet": linked.id}, content=b"the part")

    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED]

    seen, inputs = await _seen(harness, job)
    assert seen == METADATA
    inbox = harness.workdir(job) / "in"
    assert inputs == {
        "part": {"type": "user_model", "value": str(inbox / "part.txt")},  # the job's resource
        "sheet": {"type": "user_link", "value": str(inbox / sheet)},
    }
    assert (inbox / "part.txt").read_bytes() == b"the part"


async def test_a_bad_link_extension_on_the_job_resource_fails_the_job_and_the_agent_goes_on(
    harness: AgentHarness,
) -> None:
    other = "deck.istari_slides_metadata_presentation"  # another tool's metadata
    bad = await harness.submit("link", {}, model_name=other, content=METADATA)

    failed = await run_bad_then_good(harness, bad)

    assert failed.status is JobStatus.FAILED
    assert last_message(failed).startswith(
        f"input sheet: '{other}' is not a .istari_behaviours_metadata_<kind> file "
        "(the job's resource)"
    )


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("notes.txt", "input sheet: 'notes.txt' is not a .istari_behaviours_metadata_<kind> "
         "file (the resource named for it in the parameters)"),
        (None, "the resource {id} named for input sheet is neither a model nor an artifact"),
    ],
)  # fmt: skip
async def test_a_bad_link_by_id_fails_the_job_and_the_agent_goes_on(
    harness: AgentHarness, name: str | None, says: str
) -> None:
    link_id = str(uuid.uuid4())  # well formed, but no model or artifact has it
    if name is not None:
        link_id = (await _resource(harness, name, b"plain notes", "model")).id
    bad = await harness.submit("link", {"sheet": link_id})

    failed = await run_bad_then_good(harness, bad)

    assert failed.status is JobStatus.FAILED
    assert says.format(id=link_id) in last_message(failed)


async def test_a_linked_file_that_does_not_match_its_sha_is_refused(harness: AgentHarness) -> None:
    linked = await _resource(harness, DECK, METADATA, "model")
    blob = harness.registry.registry.blobs.path(linked.file.current.content_token.sha)
    blob.write_bytes(b"tampered metadata")
    bad = await harness.submit("link", {"sheet": linked.id})

    failed = await run_bad_then_good(harness, bad)

    says = "the linked resource for input sheet downloaded does not match its sha"
    assert says in last_message(failed)


async def test_a_version_of_output_revises_the_resource_a_link_named_by_id(
    harness: AgentHarness,
) -> None:
    """`version_of` names a `user_link` given by id: that resource gets the new revision, not
    the job's own resource (Validating records which resource filled which input)."""
    linked = await _resource(harness, DECK, METADATA, "model")
    job = await harness.submit("revise_link", {"sheet": linked.id})

    assert [o.reason for o in await harness.run()] == [Reason.COMPLETED]

    revised = await harness.client.get_model(linked.id)
    assert len(revised.file.revisions) == 2
    assert job.model_id is not None
    own = await harness.client.get_model(job.model_id)
    assert len(own.file.revisions) == 1  # the job's resource is left alone
