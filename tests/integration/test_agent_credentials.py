"""Inline credentials end to end: stored in the registry, bound to a job, sealed to the agent
that claims it, opened by that agent only, read by the tool from a 0600 file that is gone when
the job ends, and found nowhere else: not in a log line, a file the agent wrote, an artifact,
or the job as the registry shows it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.registry.errors import Conflict, RegistryRejected
from agent.registry.models import NewAgent
from tests.support.agent_harness import AgentHarness
from tests.support.logwatch import watch_logs

SECRET = '{"token": "cr3dential-' + "x" * 24 + '"}'


async def store(h: AgentHarness, secret: str = SECRET, **extra: Any) -> str:
    """Store a credential through the local registry's extension endpoint; its id."""
    url = h.registry.url + "/api/v2/stored_credentials"
    body = {"name": "service token", "function_auth_type": "token", "secret": secret, **extra}
    headers = {"Authorization": f"Bearer {h.registry.token}"}
    async with h.client.session.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        doc: dict[str, Any] = await resp.json()
    assert "secret" not in doc and secret not in json.dumps(doc)
    return str(doc["id"])


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_a_bound_credential_reaches_the_tool_and_nothing_else(
    harness: AgentHarness,
) -> None:
    credential = await store(harness)
    job = await harness.submit("secret", credentials={"api_auth": credential})
    assert not job.auth_deliveries  # the submitter never sees it
    with watch_logs() as logs:
        outcomes = await harness.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    facts = json.loads((harness.workdir(job) / "tmp" / "out.txt").read_text())
    assert facts["sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()  # the tool read it
    assert facts["mode"] == "0o600"
    assert not Path(facts["path"]).exists()  # removed at the job's end, work dir kept or not
    assert Path(facts["path"]).parent == harness.workdir(job) / "auth"

    needle = SECRET.encode()
    assert not [e for e in logs.entries if SECRET in repr(e)]
    assert not files_holding(harness.root, needle)  # work dir, journal, state, agent key dir
    blobs = harness.registry.registry.blobs.root  # every artifact's content
    assert not files_holding(blobs, needle)
    seen_later = await harness.job(job.id)  # the registry shows no delivery after the claim
    assert not seen_later.auth_deliveries
    assert seen_later.status is JobStatus.COMPLETED


async def test_bindings_are_checked_at_submission(harness: AgentHarness) -> None:
    credential = await store(harness)
    with pytest.raises(RegistryRejected, match="has no auth_info input 'nope'"):
        await harness.submit("secret", credentials={"nope": credential})
    with pytest.raises(Conflict, match="is missing"):
        await harness.submit("secret", credentials={"api_auth": "0" * 32})
    expired = await store(harness, expiration="2020-01-01T00:00:00+00:00")
    with pytest.raises(Conflict, match="is expired"):
        await harness.submit("secret", credentials={"api_auth": expired})


async def test_an_agent_without_inline_auth_is_neither_offered_nor_given_the_job(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("secret", credentials={"api_auth": await store(harness)})
    plain = await harness.client.register_agent(NewAgent(agent_version="0.0", host_os="x"))
    offered = await harness.client.available_jobs(plain.id)
    assert job.id not in [j.id for j in offered.items]
    with pytest.raises(Conflict, match="only an agent that advertises inline_auth"):
        await harness.client.update_job_status(job.id, JobStatus.CLAIMED, plain.id)


async def test_a_job_without_its_credential_fails_saying_how_to_bind_one(
    harness: AgentHarness,
) -> None:
    await harness.submit("secret")
    outcomes = await harness.run()
    assert [o.reason for o in outcomes] == [Reason.INVALID_JOB]
    assert "Function inputs ['api_auth'] not provided" in outcomes[0].message
    assert "auth_bindings" in outcomes[0].message


async def test_a_credential_of_another_auth_type_fails_the_job_saying_both(
    harness: AgentHarness,
) -> None:
    """`@token:service` takes a token; a basic credential bound to it is refused by the agent."""
    credential = await store(harness, function_auth_type="basic")
    bad = await harness.submit("secret", credentials={"api_auth": credential})
    good = await harness.submit("secret", credentials={"api_auth": await store(harness)})
    outcomes = await harness.run()
    assert [o.reason for o in outcomes] == [Reason.INVALID_JOB, Reason.COMPLETED]
    failed = await harness.job(bad.id)
    assert failed.status_history[-1].message == (
        "input api_auth: a basic credential was delivered; this input takes token"
    )
    assert (await harness.job(good.id)).status is JobStatus.COMPLETED
    assert not (harness.workdir(bad) / "tmp" / "out.txt").exists()  # the tool never ran
