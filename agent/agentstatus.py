"""The agent's own status in the registry, reported off the jobs' critical path, throttled.

Jobs only `set` a status; one long-lived task reports it, retrying while the registry is
unreachable, so a job never waits for its agent's bookkeeping and the registry ends up
showing the true status even after an outage. *Decision:* the registry gets the agent's
current status at most every `SETTLE` seconds: a status that stood for less (a job's phases
when its tool is quick) is folded into the one that followed it, and a status the registry
already shows is not sent again. A 30 ms job on an idle agent thus reports nothing, where it
used to send six requests; a phase that lasts longer than `SETTLE` is always seen. The jobs'
own histories keep every phase. With several jobs running at once the status follows the
latest phase move, and says Idle only when the last running job has ended. An agent that
drains or stops says Paused (the registry's "not accepting jobs"): there is no offline
status, and Paused stays true until it starts again.
"""

from __future__ import annotations

import asyncio

import structlog

from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

SETTLE = 0.1  # seconds: the registry hears the agent's status at most this often
RETRY_PAUSE = 1.0  # seconds between rounds of retries while the registry stays away


class AgentStatusReporter:
    """Reports the latest status jobs set, from one task (`run`)."""

    def __init__(
        self,
        client: RegistryClient,
        agent_id: str,
        retry_budget: float,
        reported: AgentStatus | None = None,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._budget = retry_budget
        self._latest: AgentStatus | None = None
        self._reported = reported  # what the registry shows (announce said Idle)
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
        """Make `status` the agent's current one (returns at once; reported soon after)."""
        self._latest = status
        if status is not self._reported:
            self._flushed.clear()
            self._wake.set()

    async def run(self) -> None:
        """Report the current status whenever it changed, until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(SETTLE)  # let a quick succession of statuses settle
            self._wake.clear()
            status = self._latest
            if status is not None and status is not self._reported:
                if not await self._send(status):
                    self._wake.set()  # try again: the registry must end up showing it
                    self._flushed.set()  # (a stopping agent does not wait for it)
                    await asyncio.sleep(RETRY_PAUSE)
                    continue
                self._reported = status
            if self._latest is self._reported:
                self._flushed.set()

    async def flushed(self) -> None:
        """Wait until the current status has been reported (or a round of retries failed)."""
        await self._flushed.wait()

    async def _send(self, status: AgentStatus) -> bool:
        try:
            await with_retries(
                lambda: self._client.set_agent_status(self._agent_id, status),
                budget=self._budget,
                what=f"agent status {status.value}",
            )
        except RegistryError as e:
            log.warning("agent.status_failed", status=status.value, error=str(e))
            return False
        return True
