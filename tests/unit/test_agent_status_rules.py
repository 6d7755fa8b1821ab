"""The agent-status reporter's merge rules and retry bound, and the pause switch (issue 21).

The reporter runs against a fake registry that records what it was sent; nothing here sleeps
to synchronise: each test waits on `flushed` or on a recorded state, under a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from agent import agentstatus, control
from agent.agentstatus import AgentStatusReporter
from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryUnavailable
from tests.support.logwatch import eventually, watch_logs

S = AgentStatus


class FakeRegistry:
    """Takes agent statuses (failing the first `failures` attempts); records each attempt."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts: list[AgentStatus] = []
        self.shown: list[AgentStatus] = []

    async def set_agent_status(self, agent_id: str, status: AgentStatus) -> Any:
        self.attempts.append(status)
        if self.failures > 0:
            self.failures -= 1
            raise RegistryUnavailable
        self.shown.append(status)


@asynccontextmanager
async def reporter(
    registry: FakeRegistry,
    reported: AgentStatus | None = S.IDLE,
    retries: int | None = None,
    budget: float = 5.0,
) -> AsyncIterator[AgentStatusReporter]:
    r = AgentStatusReporter(cast(RegistryClient, registry), "a1", budget, reported, retries)
    task = asyncio.create_task(r.run())
    try:
        yield r
    finally:
        task.cancel()
        await asyncio.wait({task})


async def sent(r: AgentStatusReporter, *statuses: AgentStatus) -> None:
    for status in statuses:
        r.set(status)
    async with asyncio.timeout(10):
        await r.flushed()


async def test_passing_statuses_fold_into_the_next_within_the_settle_time() -> None:
    registry = FakeRegistry()
    async with reporter(registry) as r:
        await sent(r, S.CLAIMING_JOB, S.VALIDATING_JOB, S.EXECUTING_JOB, S.UPLOADING_JOB)
    # Validating is folded into Executing; Uploading is the last, so it stands.
    assert registry.shown == [S.CLAIMING_JOB, S.EXECUTING_JOB, S.UPLOADING_JOB]


async def test_milestones_are_never_merged() -> None:
    registry = FakeRegistry()
    milestones = [S.CLAIMING_JOB, S.EXECUTING_JOB, S.EXECUTION_SUCCESS, S.PAUSED,
                  S.UPDATING_AGENT, S.SUCCESSFUL_AGENT_UPDATE]  # fmt: skip
    async with reporter(registry) as r:
        await sent(r, *milestones)
    assert registry.shown == milestones


async def test_two_job_ends_alike_are_two_entries_and_what_follows_an_end_is_kept() -> None:
    registry = FakeRegistry()
    async with reporter(registry) as r:
        await sent(r, S.EXECUTION_SUCCESS, S.EXECUTION_SUCCESS, S.IDLE, S.CLAIMING_JOB)
    # Idle right after a job's end is not folded into the next claim.
    assert registry.shown == [S.EXECUTION_SUCCESS, S.EXECUTION_SUCCESS, S.IDLE, S.CLAIMING_JOB]


async def test_what_the_registry_shows_is_not_sent_again() -> None:
    registry = FakeRegistry()
    async with reporter(registry, reported=S.PAUSED) as r:
        await sent(r, S.PAUSED)
        assert registry.attempts == []
        await sent(r, S.IDLE, S.IDLE)
    assert registry.shown == [S.IDLE]


async def test_the_retry_limit_bounds_a_round_but_drops_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agentstatus, "RETRY_PAUSE", 0.01)
    registry = FakeRegistry(failures=3)
    with watch_logs() as logs:
        async with reporter(registry, retries=0) as r:  # one attempt a round
            r.set(S.EXECUTION_FAILED)
            r.set(S.IDLE)
            # Later rounds send it again, in order, until the registry takes it.
            await eventually(lambda: registry.shown == [S.EXECUTION_FAILED, S.IDLE])
    assert registry.attempts == [S.EXECUTION_FAILED] * 4 + [S.IDLE]
    assert len(logs.find("agent.status_failed", status="ExecutionFailed")) == 3  # 3 rounds


def test_the_rest_is_paused_while_not_accepting_and_jobs_show_over_it() -> None:
    r = AgentStatusReporter(cast(RegistryClient, FakeRegistry()), "a1", 1.0, S.IDLE)
    r.job_started()
    r.accepting(False)
    assert r.latest is S.PAUSED
    r.set(S.EXECUTING_JOB)  # a running job's phases show over Paused
    r.job_ended(S.EXECUTION_SUCCESS)
    assert r.latest is S.PAUSED  # the last job ended: the agent rests at Paused, not Idle
    r.accepting(True)
    assert [r.latest, r.rest] == [S.IDLE, S.IDLE]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_the_pause_switch_reads_the_file_at_start(state: Path) -> None:
    assert not control.PauseSwitch(state).paused
    control.set_paused(state, True)
    switch = control.PauseSwitch(state)
    assert switch.paused
    assert switch.since is not None and switch.since > 0
    assert (state / control.PAUSE_FILE).stat().st_mode & 0o777 == 0o600


def test_the_pause_switch_tells_only_of_a_change(state: Path) -> None:
    switch = control.PauseSwitch(state)
    changes: list[bool] = []
    switch.on_change = lambda: changes.append(switch.paused)
    switch.reread()
    assert changes == []  # nothing changed: nobody is told
    control.set_paused(state, True)
    switch.reread()
    switch.reread()
    control.set_paused(state, False)
    switch.reread()
    assert changes == [True, False]


def test_a_pause_file_made_by_hand_pauses_with_since_unknown(state: Path) -> None:
    state.mkdir()
    (state / control.PAUSE_FILE).write_text("please stop\n")
    switch = control.PauseSwitch(state)
    assert switch.paused
    assert switch.since == 0.0
