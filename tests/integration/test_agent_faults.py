"""The agent through a fault-injecting proxy: a registry that answers 500 or drops connections.

The proxy sits between the agent and the real local registry, for the API and for the
presigned blob URLs alike (the registry hands out the proxy's address). Note: aiohttp resends
an idempotent request (GET, PUT) once after a dropped connection, so a drop meant to reach
the agent's own retry logic needs `times=2`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.stopping import Stop
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import watch_logs

GOOD = {"label": "fine"}
OUTPUTS = {"copy-part.txt", "record.json"}


async def artifact_names(h: AgentHarness, job_id: str) -> list[str]:
    job = await h.job(job_id)
    assert job.model_id is not None
    page = await h.client.list_artifacts(job.model_id)
    return sorted(r.file.current.name or "" for r in page.items)


async def test_transient_500s_are_retried_and_the_job_completes(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    job = await faulty.submit("echo", GOOD)
    faults = [
        proxy.inject(Fault("PUT", r"/jobs/[^/]+/status$", "status", times=2, status=503)),
        proxy.inject(Fault("GET", r"/download-url$", "status", times=2, status=500)),
        proxy.inject(Fault("POST", r"/artifacts$", "status", times=3, status=500)),
    ]
    outcomes = await faulty.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    for fault in faults:
        await proxy.wait_used(fault, timeout=1)
    names = await artifact_names(faulty, job.id)
    assert names == sorted([*OUTPUTS, f"job-{job.id}.log"])  # each exactly once


async def test_lost_answers_create_nothing_twice(faulty: AgentHarness, proxy: FaultProxy) -> None:
    job = await faulty.submit("echo", GOOD)
    claim_lost = proxy.inject(Fault("PUT", r"/jobs/[^/]+/status$", "drop_response", times=2))
    create_lost = proxy.inject(Fault("POST", r"/artifacts$", "drop_response", times=2))
    outcomes = await faulty.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    await proxy.wait_used(claim_lost, timeout=1)
    await proxy.wait_used(create_lost, timeout=1)
    done = await faulty.job(job.id)
    assert [e.name for e in done.status_history].count(JobStatus.CLAIMED) == 1
    names = await artifact_names(faulty, job.id)
    assert names == sorted([*OUTPUTS, f"job-{job.id}.log"])


async def test_a_claim_whose_answer_was_lost_and_resent_is_still_ours(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    # Once only: aiohttp resends the PUT on a fresh connection, the registry answers 409 (the
    # first copy claimed it), and the agent must see that the claim is its own.
    job = await faulty.submit("echo", GOOD)
    claim_lost = proxy.inject(Fault("PUT", r"/jobs/[^/]+/status$", "drop_response", times=1))
    with watch_logs() as logs:
        outcomes = await faulty.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    await proxy.wait_used(claim_lost, timeout=1)
    assert logs.find("job.claimed", job_id=job.id, recovered=True)
    done = await faulty.job(job.id)
    assert [e.name for e in done.status_history].count(JobStatus.CLAIMED) == 1


async def test_connection_dropped_mid_upload_is_retried_intact(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    content = bytes(range(256)) * 8192  # 2 MiB, so the cut lands mid-body
    job = await faulty.submit("echo", GOOD, content=content)
    cut = proxy.inject(Fault("PUT", r"^/blobs/", "drop_request", times=2, after_bytes=65536))
    outcomes = await faulty.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    await proxy.wait_used(cut, timeout=1)
    copy = (await faulty.artifacts(await faulty.job(job.id)))["copy-part.txt"]
    assert await faulty.read(copy) == content


async def test_registry_that_keeps_failing_uploads_fails_that_job_only(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    bad = await faulty.submit("echo", GOOD)
    good = await faulty.submit("echo", GOOD, model_name="other.txt")
    proxy.inject(Fault("POST", rf"/models/{bad.model_id}/artifacts$", "status", times=10**6))
    outcomes = await faulty.run(retry_budget=0.5)
    assert [o.reason for o in outcomes] == [Reason.UPLOAD_FAILED, Reason.COMPLETED]
    failed = await faulty.job(bad.id)
    assert failed.status is JobStatus.FAILED
    assert "could not be uploaded" in (failed.status_history[-1].message or "")
    assert "-> 500: injected fault" in (failed.status_history[-1].message or "")
    assert (await faulty.job(good.id)).status is JobStatus.COMPLETED


@pytest.mark.parametrize("status", [503, 401], ids=["down", "token-refused"])
async def test_a_final_status_the_registry_could_not_take_is_delivered_after_a_restart(
    faulty: AgentHarness, proxy: FaultProxy, status: int
) -> None:
    """An outage, or a refusal that is not about the job (a token refused: 401), keeps the
    final status owed until the registry takes it; only 409 and 404 settle it."""
    job = await faulty.submit("echo", GOOD)
    down = Fault("PUT", r"/jobs/[^/]+/status$", "status", times=10_000, status=status)

    def refuse_final_reports(event: str, details: dict[str, Any]) -> None:
        # From Uploading on, the registry is "down" for job status reports, for longer than
        # the agent's status retry budget.
        if event == "job.status" and details["status"] == JobStatus.UPLOADING:
            proxy.inject(down)

    faulty.registry.registry.listeners.append(refuse_final_reports)
    with watch_logs() as logs:
        outcomes = await faulty.run(status_retry_budget=0.5)
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]  # the agent knows how it ended
    assert logs.find("job.report_owed", job_id=job.id)
    if status == 401:
        assert logs.find("job.report_rejected", job_id=job.id)  # said, and kept
    assert (await faulty.job(job.id)).status is JobStatus.UPLOADING  # the registry does not
    assert (faulty.root / "state" / "journal.sqlite3").stat().st_mode & 0o777 == 0o600

    faulty.registry.registry.listeners.remove(refuse_final_reports)
    proxy.clear()  # the registry is back; the agent starts again with nothing new to run
    with watch_logs() as logs:
        assert await faulty.run() == []
    assert logs.find("job.report_delivered", job_id=job.id)
    done = await faulty.job(job.id)
    assert done.status is JobStatus.COMPLETED
    assert [e.name for e in done.status_history].count(JobStatus.COMPLETED) == 1
    names = await artifact_names(faulty, job.id)
    assert names == sorted([*OUTPUTS, f"job-{job.id}.log"])  # uploaded once, before the outage


async def test_a_registry_down_for_longer_than_the_retry_budget_is_waited_out(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    # The serving daemon never gives up on its registry: it says so once, keeps polling, and
    # takes work again when the registry is back, however long that took.
    with watch_logs() as logs:
        async with serving(faulty, retry_budget=0.3, poll_interval=0.1):
            await logs.wait_for("dispatch.idle")  # started: an outage at start is an error
            outage = logs.mark()
            proxy.inject(Fault("*", r".*", "status", times=1_000_000, status=503))
            await logs.wait_for("registry.unavailable", outage)
            await logs.wait_for("dispatch.woken", outage, count=10)  # well past the budget
            proxy.clear()
            await logs.wait_for("registry.available", outage)
            job = await faulty.submit("echo", GOOD)
            await wait_for_status(faulty, job.id, JobStatus.COMPLETED)
    assert len(logs.find("registry.unavailable", outage)) == 1


async def test_a_registry_away_for_longer_than_the_retry_budget_mid_job_loses_nothing(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    """From the tool's start the registry is unreachable (503 to everything) for longer than
    the retry budget: the tool runs on, its phases are told late but in order, the upload
    waits, and once the registry is back the job completes with its outputs, each once."""
    job = await faulty.submit("echo", GOOD)
    outage = Fault("*", r".", "status", times=10**6, status=503)

    def go_away_when_running(event: str, details: dict[str, Any]) -> None:
        if event == "job.status" and details["status"] == JobStatus.RUNNING:
            proxy.inject(outage)

    faulty.registry.registry.listeners.append(go_away_when_running)
    with watch_logs() as logs:
        run = asyncio.create_task(faulty.run(retry_budget=0.3, status_retry_budget=0.3))
        await logs.wait_for("job.phase_unreported", phase="Uploading")
        await logs.wait_for("job.waiting_for_registry", what="upload")
        proxy.clear()  # the registry is back
        outcomes = await run
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    done = await faulty.job(job.id)
    names = [e.name.value for e in done.status_history]
    assert names == [
        "Created", "Pending", "Claimed", "Validating", "Running", "Uploading", "Completed"
    ]  # fmt: skip
    assert await artifact_names(faulty, job.id) == sorted([*OUTPUTS, f"job-{job.id}.log"])


async def test_an_upload_cut_off_by_a_restart_registers_nothing_twice(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    """The first artifact is created but its answer is lost, and the lookup that would tell
    fails too; the agent then stops without ending the job (SIGUSR2's detach). The next
    start resumes the upload from the journal and finds that artifact instead of creating
    it again."""
    job = await faulty.submit("echo", GOOD)
    proxy.inject(Fault("POST", r"/artifacts$", "drop_response", times=1))
    proxy.inject(Fault("GET", r"/models/[^/]+/artifacts$", "status", times=10**6, status=503))
    stop = Stop()
    with watch_logs() as logs:
        first = asyncio.create_task(faulty.run(Mode.SERVE, stop=stop, retry_budget=0.3))
        await logs.wait_for("job.waiting_for_registry", what="upload")
        stop.detach("test")
        assert await first == []  # no outcome: the job was let go, not ended
        assert logs.find("job.detached", phase="Uploading")
        proxy.clear()
        outcomes = await faulty.run()
        assert logs.find("job.resuming", job_id=job.id, phase="Uploading")
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert await artifact_names(faulty, job.id) == sorted([*OUTPUTS, f"job-{job.id}.log"])
