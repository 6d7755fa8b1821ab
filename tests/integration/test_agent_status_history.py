"""The registry's agent status history after real jobs: each job's claim, its tool's start and
its end are seen, then Idle (issue 21: a status that is always true)."""

from __future__ import annotations

import json

import pytest

from agent.daemon import Mode
from agent.protocol.states import AgentStatus
from tests.support.agent_harness import AgentHarness

S = AgentStatus


async def statuses(harness: AgentHarness) -> list[AgentStatus]:
    agent_id = json.loads((harness.root / "state" / "agent.json").read_text())["agent_id"]
    return [s.name for s in (await harness.client.get_agent(agent_id)).status_history]


def after_start(history: list[AgentStatus]) -> list[AgentStatus]:
    """The history from this run's claim on (announce said Idle before it)."""
    return history[history.index(S.CLAIMING_JOB) :]


@pytest.mark.parametrize(
    ("behaviour", "params", "ended"),
    [("echo", {"label": "ok"}, S.EXECUTION_SUCCESS), ("exit", {"code": 3}, S.EXECUTION_FAILED)],
    ids=["good", "failing"],
)
async def test_a_job_reads_claiming_executing_its_end_then_idle(
    harness: AgentHarness, behaviour: str, params: dict[str, object], ended: AgentStatus
) -> None:
    await harness.submit(behaviour, params)
    await harness.run(Mode.UNTIL_IDLE)
    history = after_start(await statuses(harness))
    assert history[0] is S.CLAIMING_JOB
    assert S.EXECUTING_JOB in history
    end = history.index(ended)
    assert history.index(S.EXECUTING_JOB) < end
    assert history[end + 1 :] == [S.IDLE, S.PAUSED]  # Idle, then Paused as it stopped


async def test_every_job_ends_visibly_even_back_to_back(harness: AgentHarness) -> None:
    for _ in range(3):
        await harness.submit("echo", {"label": "ok"})
    await harness.run(Mode.UNTIL_IDLE)
    history = after_start(await statuses(harness))
    assert history.count(S.EXECUTION_SUCCESS) == 3
    assert history.count(S.CLAIMING_JOB) == 3
    assert history[-1] is S.PAUSED
