"""The agent's own status in the registry, reported in order and off the jobs' critical path.

Jobs only `set` a status; one long-lived task sends them in order, retrying while the registry
is unreachable, so a job never waits for its agent's bookkeeping and the registry ends up
showing the true status even after an outage. When many are pending (a long outage), the
oldest are dropped: only the recent history and the current status matter. With several
jobs running at once the status follows the latest phase move, and says Idle only when the
last running job has ended. An agent that drains or stops says Paused (the registry's "not
accepting jobs"): there is no offline status, and Paused stays true until it starts again.
"""

from __future__ import annotations

import asyncio
from collections import deque

import structlog

from agent.jobs.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

MAX_PENDING = 16


class AgentStatusReporter:
    """Sends the statuses jobs set, in order, from one task (`run`)."""

    def __init__(self, client: RegistryClient, agent_id: str, retry_budget: float) -> None:
        self._client = client
        self._agent_id = agent_id
        self._budget = retry_budget
        self._pending: deque[AgentStatus] = deque(maxlen=MAX_PENDING)
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._running = 0
        self._accepting = True

    def job_started(self) -> None:
        """A job began: the agent is not Idle until it (and every other job) has ended."""
        self._running += 1

    def job_ended(self, status: AgentStatus) -> None:
        """A job ended with `status` (ExecutionSuccess/Failed); Idle follows if it was the last."""
        self._running = max(0, self._running - 1)
        self.set(status)
        if self._running == 0 and self._accepting:
            self.set(AgentStatus.IDLE)

    def stop_accepting(self) -> None:
        """The agent claims nothing more: once its jobs end it says Paused, not Idle."""
        self._accepting = False
        if self._running == 0:
            self.set(AgentStatus.PAUSED)

    def stopped(self) -> None:
        """The agent is stopping: Paused ("not accepting jobs") is what the registry keeps."""
        self._accepting = False
        self.set(AgentStatus.PAUSED)

    def set(self, status: AgentStatus) -> None:
        """Queue `status` to be reported (returns at once)."""
        self._pending.append(status)
        self._flushed.clear()
        self._wake.set()

    async def run(self) -> None:
        """Report queued statuses until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._send(self._pending[0])
                self._pending.popleft()
            self._flushed.set()

    async def flushed(self) -> None:
        """Wait until every queued status has been reported (or given up on)."""
        await self._flushed.wait()

    async def _send(self, status: AgentStatus) -> None:
        try:
            await with_retries(
                lambda: self._client.set_agent_status(self._agent_id, status),
                budget=self._budget,
                what=f"agent status {status.value}",
            )
        except RegistryError as e:
            log.warning("agent.status_failed", status=status.value, error=str(e))
