"""The agent's own status reaches the local registry in order: passing statuses of a quick
succession fold into the next one, milestones (a claim, a tool started, a job's end) never do,
a status the registry shows is not sent again, and one the registry could not take is sent
once it is back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent.agentstatus import AgentStatusReporter
from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import until, watch_logs

JOB_PHASES = [
    AgentStatus.CLAIMING_JOB,
    AgentStatus.VALIDATING_JOB,
    AgentStatus.EXECUTING_JOB,
    AgentStatus.UPLOADING_JOB,
    AgentStatus.EXECUTION_SUCCESS,
]


async def registered(harness: AgentHarness) -> str:
    """Run the agent once (it registers, says Idle, then Paused as it stops); its id."""
    await harness.run()
    return str(json.loads((harness.root / "state" / "agent.json").read_text())["agent_id"])


async def history(client: RegistryClient, agent_id: str) -> list[AgentStatus]:
    return [s.name for s in (await client.get_agent(agent_id)).status_history]


@asynccontextmanager
async def reporting(reporter: AgentStatusReporter) -> AsyncIterator[AgentStatusReporter]:
    task = asyncio.create_task(reporter.run())
    try:
        yield reporter
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_a_quick_succession_keeps_its_milestones_and_folds_the_rest(
    harness: AgentHarness,
) -> None:
    # Changed deliberately (issue 21): a quick job used to fold into Idle and show nothing;
    # now its claim, its tool's start and its end are each seen, then Idle.
    agent_id = await registered(harness)
    before = await history(harness.client, agent_id)
    assert before[-1] is AgentStatus.PAUSED
    reporter = AgentStatusReporter(harness.client, agent_id, 5.0, AgentStatus.PAUSED)
    async with reporting(reporter):
        for status in [*JOB_PHASES, AgentStatus.IDLE]:  # a job too quick to be seen
            reporter.set(status)
        async with asyncio.timeout(10):
            await reporter.flushed()
        assert await history(harness.client, agent_id) == [
            *before,
            AgentStatus.CLAIMING_JOB,
            AgentStatus.EXECUTING_JOB,
            AgentStatus.EXECUTION_SUCCESS,
            AgentStatus.IDLE,
        ]
        before = await history(harness.client, agent_id)

        reporter.set(AgentStatus.IDLE)  # what the registry already shows: nothing is sent
        async with asyncio.timeout(10):
            await reporter.flushed()
        reporter.set(AgentStatus.EXECUTING_JOB)
        async with asyncio.timeout(10):
            await reporter.flushed()
    assert await history(harness.client, agent_id) == [*before, AgentStatus.EXECUTING_JOB]


async def test_a_status_the_registry_refused_is_sent_again_once_it_is_back(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    agent_id = await registered(faulty)
    before = await history(faulty.client, agent_id)
    client = RegistryClient(faulty.registry_url, faulty.registry.token)
    reporter = AgentStatusReporter(client, agent_id, 0.2, AgentStatus.PAUSED)
    proxy.inject(Fault("PUT", r"/agents/[^/]+/status$", "status", times=1000, status=503))
    async with client, reporting(reporter):
        with watch_logs() as logs:
            reporter.set(AgentStatus.IDLE)
            async with asyncio.timeout(10):
                await reporter.flushed()  # a round of retries failed: a stopping agent goes on
            assert logs.find("agent.status_failed", status="Idle")
            assert await history(faulty.client, agent_id) == before
            proxy.clear()  # the registry is back

            async def told() -> bool:
                return (await history(faulty.client, agent_id))[-1] is AgentStatus.IDLE

            await until(told)
    assert await history(faulty.client, agent_id) == [*before, AgentStatus.IDLE]
