"""Concurrent slots and the resource check before a claim, with real tools."""

from __future__ import annotations

from typing import Any

import pytest

from agent.daemon import Mode
from agent.protocol.states import TERMINAL, JobStatus
from tests.support.agent_harness import AgentHarness, serving
from tests.support.logwatch import watch_logs


@pytest.mark.parametrize("slots", [1, 3])
async def test_slots_bound_how_many_jobs_run_at_once(harness: AgentHarness, slots: int) -> None:
    jobs = [await harness.submit("sleep", {"seconds": 1}) for _ in range(3)]
    running: set[str] = set()
    most = 0

    def track(event: str, details: dict[str, Any]) -> None:
        nonlocal most
        if event != "job.status":
            return
        if details["status"] == JobStatus.RUNNING:
            running.add(details["job_id"])
            most = max(most, len(running))
        elif details["status"] in TERMINAL:
            running.discard(details["job_id"])

    harness.registry.registry.listeners.append(track)
    outcomes = await harness.run(Mode.UNTIL_IDLE, max_concurrent_jobs=slots)

    assert [o.ok for o in outcomes] == [True] * 3
    assert most == slots
    logs = {harness.workdir(job) / "job.log" for job in jobs}
    assert len(logs) == 3
    assert all("sleeping" in log.read_text() for log in logs)  # each job its own dir and log


async def test_a_machine_short_of_memory_claims_nothing_until_it_has_room(
    harness: AgentHarness,
) -> None:
    with watch_logs() as logs:
        async with serving(harness, min_free_memory_mb=2**40):  # a petabyte: never available
            low = await logs.wait_for("agent.resources_low")
            assert "min_free_memory_mb" in low["why"]
            job = await harness.submit("echo", {"label": "waits"})
            submitted = logs.mark()
            await logs.wait_for("dispatch.woken", submitted, count=2, reason="poll")
            assert (await harness.job(job.id)).status is JobStatus.PENDING
    assert len(logs.find("agent.resources_low")) == 1  # said once, not at every poll
    assert not logs.find("job.claimed")
