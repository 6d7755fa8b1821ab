"""The agent's limits and its start: timeouts kill the tool tree; broken modules are skipped."""

from __future__ import annotations

import asyncio
import json

from structlog.testing import capture_logs

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.stopping import Stop
from tests.support.agent_harness import AgentHarness, wait_for_status
from tests.support.logwatch import watch_logs
from tests.support.processes import gone, processes_in
from tests.tools import module


async def test_timeout_kills_the_whole_tree_even_when_sigterm_is_ignored(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("sleep", {"seconds": 120, "ignore_term": True})
    good = await harness.submit("echo", {"label": "next"})

    outcomes = await harness.run(process_timeout=1.5, kill_grace=0.5)

    assert [o.reason for o in outcomes] == [Reason.TIMEOUT, Reason.COMPLETED]
    failed = await harness.job(job.id)
    assert failed.status is JobStatus.FAILED
    message = failed.status_history[-1].message or ""
    assert "ran past the process timeout (1.5 s) and was stopped; last output:\nsleeping" in message
    temp = harness.workdir(job) / "tmp"
    pids = [int((temp / name).read_text()) for name in ("tool.pid", "child-0.pid", "child-1.pid")]
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    assert not processes_in(temp)
    assert (await harness.job(good.id)).status is JobStatus.COMPLETED
    assert f"job-{job.id}.log" in await harness.artifacts(job)  # the failed tool's log


async def test_polite_tool_stops_on_sigterm_within_grace(harness: AgentHarness) -> None:
    job = await harness.submit("sleep", {"seconds": 120})
    outcomes = await harness.run(process_timeout=1, kill_grace=30)
    assert outcomes[0].reason is Reason.TIMEOUT
    assert outcomes[0].signal == 15  # SIGTERM ended it; the 30 s grace was not needed
    temp = harness.workdir(job) / "tmp"
    assert gone(int((temp / "child-1.pid").read_text()))


async def test_broken_manifest_is_reported_and_the_rest_served(harness: AgentHarness) -> None:
    broken = module.install(
        harness.modules_path, "broken", run_command="python3 {entrypoint} {nonsense}"
    )
    doc = json.loads((broken / "module_manifest.json").read_text())
    doc["module_key"] = "@test:broken"
    (broken / "module_manifest.json").write_text(json.dumps(doc))
    good = await harness.submit("echo", {"label": "still served"})

    with capture_logs() as logs:
        await harness.run()

    rejected = [e for e in logs if e["event"] == "module.rejected"]
    assert len(rejected) == 1
    assert rejected[0]["path"] == str(broken / "module_manifest.json")
    assert rejected[0]["field"].startswith("functions.@test:")
    assert rejected[0]["field"].endswith(".0.run_command")
    assert "unknown placeholder(s) {nonsense}" in rejected[0]["problem"]
    assert (await harness.job(good.id)).status is JobStatus.COMPLETED


async def test_first_stop_drains_the_running_job_and_claims_nothing_new(
    harness: AgentHarness,
) -> None:
    running = await harness.submit("sleep", {"seconds": 1})
    waiting = await harness.submit("echo", {"label": "not now"})
    stop = Stop()
    async with asyncio.TaskGroup() as tg:
        agent = tg.create_task(harness.run(Mode.SERVE, stop=stop))
        await wait_for_status(harness, running.id, JobStatus.RUNNING)
        stop.request("test")
    assert [o.reason for o in agent.result()] == [Reason.COMPLETED]
    assert (await harness.job(waiting.id)).status is JobStatus.PENDING


async def test_second_stop_stops_the_tool_and_reports_agent_stopping(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("sleep", {"seconds": 120})
    stop = Stop()
    async with asyncio.TaskGroup() as tg:
        agent = tg.create_task(harness.run(Mode.SERVE, stop=stop, kill_grace=5))
        await wait_for_status(harness, job.id, JobStatus.RUNNING)
        stop.request("test")
        stop.request("test again")
    assert [o.reason for o in agent.result()] == [Reason.AGENT_STOPPING]
    failed = await harness.job(job.id)
    assert failed.status is JobStatus.FAILED
    assert "the agent was stopped while the tool ran" in (failed.status_history[-1].message or "")
    assert not processes_in(harness.workdir(job) / "tmp")


async def test_a_drain_past_its_deadline_stops_the_running_job_as_a_forced_stop_would(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("sleep", {"seconds": 120})
    stop = Stop()
    with watch_logs() as logs:
        async with asyncio.TaskGroup() as tg:
            agent = tg.create_task(
                harness.run(Mode.SERVE, stop=stop, kill_grace=5, drain_timeout=0.2)
            )
            await wait_for_status(harness, job.id, JobStatus.RUNNING)
            stop.request("test")  # only once: the deadline does the rest
    assert logs.find("agent.drain_timeout", seconds=0.2, running=1)
    assert [o.reason for o in agent.result()] == [Reason.AGENT_STOPPING]
    failed = await harness.job(job.id)
    assert failed.status is JobStatus.FAILED
    assert not processes_in(harness.workdir(job) / "tmp")
