"""A tool reports log entries and progress through its updates file, while it runs.

A real agent runs the `report` tool (tests/tools/behave.py) against the local registry: it
appends four lines (one of them garbage) and waits at a gate. While it waits, the entries are
already in the run record and the job's status message in the registry says the latest
progress; the resource samples of its process tree are being kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.protocol.states import JobStatus
from agent.runs.model import Run
from agent.runs.store import RECORDS, RunRecords
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import eventually, watch_logs


async def wait_for_message(harness: AgentHarness, job_id: str, message: str) -> None:
    """Wait until the registry takes a status of the job with this message (its event)."""
    said = asyncio.Event()

    def listen(event: str, details: dict[str, Any]) -> None:
        if event == "job.status" and details["job_id"] == job_id and details["message"] == message:
            said.set()

    harness.registry.registry.listeners.append(listen)
    try:
        async with asyncio.timeout(15):
            await said.wait()
    finally:
        harness.registry.registry.listeners.remove(listen)


def recorded(harness: AgentHarness, job_id: str) -> Run | None:
    records = RunRecords(harness.root / "state" / RECORDS)
    try:
        return records.get(job_id)
    finally:
        records.close()


async def test_entries_and_progress_appear_live_and_garbage_is_ignored_with_a_warning(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("report", {"code": 0})
    gate = harness.workdir(job) / "tmp" / "go"
    fast = {"progress_report_interval": 0.05, "resource_sample_interval": 0.05}
    with watch_logs() as logs:
        async with serving(harness, **fast):
            told = asyncio.ensure_future(wait_for_message(harness, job.id, "80% · solving"))
            await wait_for_status(harness, job.id, JobStatus.RUNNING)
            await told  # the registry hears the news while the tool still runs
            running = await harness.job(job.id)
            assert running.status is JobStatus.RUNNING
            assert running.status_history[-1].message == "80% · solving"

            def live() -> bool:
                run = recorded(harness, job.id)
                return run is not None and len(run.entries) == 4 and run.status == "Running"

            await eventually(live)
            run = recorded(harness, job.id)
            assert run is not None and run.progress == 80
            gate.touch()
            await wait_for_status(harness, job.id, JobStatus.COMPLETED)
        warned = logs.find("job.update_ignored", job_id=job.id)

    assert [(w["line"], w["problem"]) for w in warned] == [(2, "not JSON")]
    run = recorded(harness, job.id)
    assert run is not None and run.status == "Completed"
    assert [(e.level, e.message, e.tags, e.progress) for e in run.entries] == [
        ("INFO", "meshing", {"cells": 120}, 40.0),
        ("WARN", "the agent ignored line 2 of the updates file: it is not JSON",
         {"source": "agent"}, None),
        ("WARN", "coarse mesh", {}, None),
        ("INFO", "solving", {}, 80.0),
    ]  # fmt: skip
    records = RunRecords(harness.root / "state" / RECORDS)
    samples = records.samples(run.id)
    records.close()
    assert samples, "the tool's process tree was sampled while it ran"
    assert all(s.rss_kb > 1000 for s in samples)  # a Python interpreter is resident
    running_step = next(s for s in run.steps if s.phase == "Running")
    assert running_step.ended is not None
    assert all(running_step.started <= s.time <= running_step.ended for s in samples)


async def test_no_status_messages_when_the_interval_is_zero(harness: AgentHarness) -> None:
    job = await harness.submit("report", {"code": 0})
    gate = harness.workdir(job) / "tmp" / "go"
    async with serving(harness, progress_report_interval=0):
        await wait_for_status(harness, job.id, JobStatus.RUNNING)

        def entries_kept() -> bool:
            run = recorded(harness, job.id)
            return run is not None and len(run.entries) == 4

        await eventually(entries_kept)
        gate.touch()
        await wait_for_status(harness, job.id, JobStatus.COMPLETED)
    done = await harness.job(job.id)
    running = [s for s in done.status_history if s.name is JobStatus.RUNNING]
    assert [s.message for s in running] == [None]  # only the phase move itself
