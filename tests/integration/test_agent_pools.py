"""Agent pools: joining by id or name, pool jobs going to members only, a pool that is not there."""

from __future__ import annotations

import pytest

from agent import identity
from agent.daemon import Mode
from agent.pools import PoolError
from agent.protocol.states import JobStatus
from agent.registry.models import Agent
from tests.support.agent_harness import AgentHarness


async def agent_of(harness: AgentHarness, state: str) -> Agent:
    """The registry's record of the agent whose state path is `state` under the harness."""
    saved = identity.load(harness.root / state, harness.registry.url)
    assert saved is not None
    return await harness.client.get_agent(saved.agent_id)


async def test_pool_jobs_go_to_members_only_and_members_join_by_name(
    harness: AgentHarness,
) -> None:
    pool = await harness.client.create_pool("render-farm", "test pool")
    job = await harness.submit("echo", {"label": "pooled"}, pool_id=pool.id)

    outsider = await harness.run(Mode.UNTIL_IDLE, state_path=harness.root / "outsider")
    assert outsider == []
    assert (await harness.job(job.id)).status is JobStatus.PENDING

    member = await harness.run(
        Mode.UNTIL_IDLE, state_path=harness.root / "member", agent_pools=("render-farm",)
    )
    assert [o.ok for o in member] == [True]
    done = await harness.job(job.id)
    assert done.status is JobStatus.COMPLETED
    joined = await agent_of(harness, "member")
    assert joined.agent_pools == [pool.id]
    assert done.claimed_by == joined.id

    again = await harness.run(
        Mode.UNTIL_IDLE, state_path=harness.root / "member", agent_pools=(pool.id,)
    )
    assert again == []
    assert (await agent_of(harness, "member")).agent_pools == [pool.id]  # joined once


async def test_a_pool_that_does_not_exist_stops_the_start_with_what_to_do(
    harness: AgentHarness,
) -> None:
    with pytest.raises(PoolError, match=r"no pool has the id or name 'gpus'; create it"):
        await harness.run(Mode.UNTIL_IDLE, agent_pools=("gpus",))


async def test_a_name_shared_by_two_pools_must_be_given_as_an_id(harness: AgentHarness) -> None:
    for _ in range(2):
        await harness.client.create_pool("twins", None)
    with pytest.raises(PoolError, match=r"'twins' names 2 pools .*; give the id instead"):
        await harness.run(Mode.UNTIL_IDLE, agent_pools=("twins",))
