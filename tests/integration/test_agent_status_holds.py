"""The agent's status while it holds back, across an upgrade, and with several slots (issue 21):
a paused or held-back agent never says Idle, not even for a moment at start; a SIGUSR2 stop
says UpdatingAgent and the next start SuccessfulAgentUpdate; with two slots the one status
says Idle only once both jobs have ended."""

from __future__ import annotations

import asyncio
import json

from agent import control
from agent.daemon import Mode
from agent.protocol.states import AgentStatus, JobStatus
from agent.stopping import Stop
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import until, watch_logs

S = AgentStatus


async def statuses(harness: AgentHarness) -> list[AgentStatus]:
    agent_id = json.loads((harness.root / "state" / "agent.json").read_text())["agent_id"]
    return [s.name for s in (await harness.client.get_agent(agent_id)).status_history]


async def test_a_restart_while_paused_never_says_idle(harness: AgentHarness) -> None:
    await harness.run()  # registers; says Idle, then Paused as it stops
    before = await statuses(harness)
    control.set_paused(harness.root / "state", True)
    with watch_logs() as logs:
        async with serving(harness):
            await logs.wait_for("dispatch.idle")  # announced, looked at its hold, waiting
    after = (await statuses(harness))[len(before) :]
    assert after  # announce reported something: Paused
    assert S.IDLE not in after
    assert set(after) == {S.PAUSED}


async def test_the_resource_check_holding_back_shows_paused_and_the_job_stays_pending(
    harness: AgentHarness,
) -> None:
    with watch_logs() as logs:
        async with serving(harness, min_free_memory_mb=2**40):  # never available
            await logs.wait_for("agent.resources_low")
            job = await harness.submit("echo", {"label": "waits"})
            submitted = logs.mark()
            await logs.wait_for("dispatch.woken", submitted, count=2, reason="poll")

            async def paused() -> bool:
                return (await statuses(harness))[-1:] == [S.PAUSED]

            await until(paused)
            assert (await harness.job(job.id)).status is JobStatus.PENDING
    history = await statuses(harness)
    assert S.IDLE not in history  # not even at announce
    assert not logs.find("job.claimed")


async def test_a_detach_stop_says_updating_and_the_next_start_successful_update(
    harness: AgentHarness,
) -> None:
    stop = Stop()
    with watch_logs() as logs:
        first = asyncio.create_task(harness.run(Mode.SERVE, stop=stop))
        await logs.wait_for("dispatch.idle")
        stop.detach("test")  # what SIGUSR2 does
        assert await first == []
    assert (await statuses(harness))[-1] is S.UPDATING_AGENT
    assert (harness.root / "state" / control.UPGRADE_FILE).exists()
    before = await statuses(harness)

    async def updated_then_idle() -> bool:
        after = (await statuses(harness))[len(before) :]
        return after[-2:] == [S.SUCCESSFUL_AGENT_UPDATE, S.IDLE]

    with watch_logs() as logs:
        async with serving(harness):
            await until(updated_then_idle)
        assert logs.find("agent.upgraded")
    after = (await statuses(harness))[len(before) :]
    assert after[after.index(S.SUCCESSFUL_AGENT_UPDATE) :] == [
        S.SUCCESSFUL_AGENT_UPDATE, S.IDLE, S.PAUSED
    ]  # fmt: skip
    assert not (harness.root / "state" / control.UPGRADE_FILE).exists()  # said once


async def test_with_two_slots_the_status_says_idle_only_once_both_jobs_ended(
    harness: AgentHarness,
) -> None:
    jobs = [await harness.submit("gate", {"code": 0}) for _ in range(2)]
    async with serving(harness, max_concurrent_jobs=2):
        for job in jobs:
            await wait_for_status(harness, job.id, JobStatus.RUNNING)
        (harness.workdir(jobs[0]) / "tmp" / "go").touch()
        await wait_for_status(harness, jobs[0].id, JobStatus.COMPLETED)

        async def first_end_then_the_other_running() -> bool:
            history = await statuses(harness)
            return S.EXECUTION_SUCCESS in history and history[-1] is S.EXECUTING_JOB

        await until(first_end_then_the_other_running)
        (harness.workdir(jobs[1]) / "tmp" / "go").touch()
        await wait_for_status(harness, jobs[1].id, JobStatus.COMPLETED)

        async def both_ended() -> bool:
            return (await statuses(harness)).count(S.EXECUTION_SUCCESS) == 2

        await until(both_ended)
    history = await statuses(harness)
    history = history[history.index(S.CLAIMING_JOB) :]
    last_end = len(history) - 1 - history[::-1].index(S.EXECUTION_SUCCESS)
    assert S.IDLE not in history[:last_end]  # one job still ran: never Idle
    assert history[last_end + 1 :] == [S.IDLE, S.PAUSED]
