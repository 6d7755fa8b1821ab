"""The agent's own status in the registry, reported off the jobs' critical path, in order.

Jobs and the daemon only `set` a status; one long-lived task reports it, retrying while the
registry is unreachable, so a job never waits for its agent's bookkeeping and the registry
ends up showing the true status even after an outage.

*Decision* (docs/agent.md, "The agent's status"): statuses are reported in the order they
happened. A milestone is never merged away: `ClaimingJob` (a claim was made), `ExecutingJob`
(a tool started), `ExecutionSuccess`/`ExecutionFailed` (a job ended: one entry per job, even
two alike in a row), `Paused` and the update statuses. A passing status (`ValidatingJob`,
`UploadingJob`, `Idle`) that a later one replaced within `SETTLE` seconds is folded into it
(but never the one right after a job's end), and a status the registry already shows is
not sent again. A 30 ms job on an idle agent thus
reads ClaimingJob, ExecutingJob, ExecutionSuccess, Idle: four requests, each its own entry.

With several slots the one status is the latest event of any of them; when a job ends while
others run, the status goes back to the furthest phase among them (`resume_jobs`). When no
job runs it rests at Idle, or at Paused whenever the agent will not claim (`accepting`).

Each round of sending is bounded by the retry budget and, when given, by
`status_update_retry_limit` attempts (whichever ends first, as for job phases); a round that
fails drops nothing: the status stays first in line and is sent again each `RETRY_PAUSE`, so a
job's end (or any status) is never lost to the limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import structlog

from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

SETTLE = 0.1  # seconds: a passing status that stood for less is folded into the next one
RETRY_PAUSE = 1.0  # seconds between rounds of retries while the registry stays away
BACKLOG = 1000  # statuses kept while the registry is away (jobs need it too: rarely reached)

_S = AgentStatus
MILESTONES: frozenset[AgentStatus] = frozenset(
    {_S.CLAIMING_JOB, _S.EXECUTING_JOB, _S.EXECUTION_SUCCESS, _S.EXECUTION_FAILED, _S.PAUSED,
     _S.UPDATING_AGENT, _S.SUCCESSFUL_AGENT_UPDATE, _S.FAILED_AGENT_UPDATE,
     _S.UPDATING_MODULE, _S.SUCCESSFUL_MODULE_UPDATE, _S.FAILED_MODULE_UPDATE}
)  # fmt: skip
JOB_ENDS: frozenset[AgentStatus] = frozenset({_S.EXECUTION_SUCCESS, _S.EXECUTION_FAILED})


class AgentStatusReporter:
    """Reports the statuses jobs and the daemon set, in order, from one task (`run`)."""

    def __init__(
        self,
        client: RegistryClient,
        agent_id: str,
        retry_budget: float,
        reported: AgentStatus | None = None,
        retries: int | None = None,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._budget = retry_budget
        self._retries = retries  # status_update_retry_limit: bounds a round, drops nothing
        self._latest: AgentStatus | None = reported
        self._reported = reported  # what the registry shows (announce said Idle or Paused)
        self._sending: AgentStatus | None = None
        self._queue: deque[AgentStatus] = deque(maxlen=BACKLOG)
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._running = 0
        self._accepting = True
        self.on_set: Callable[[], None] | None = None  # the daemon's status file listens

    @property
    def latest(self) -> AgentStatus | None:
        """The agent's current status (the registry shows it soon, if not yet)."""
        return self._latest

    @property
    def rest(self) -> AgentStatus:
        """What the agent says with no job running: Idle, or Paused when it will not claim."""
        return AgentStatus.IDLE if self._accepting else AgentStatus.PAUSED

    def job_started(self) -> None:
        """A job began: the agent is not Idle until it (and every other job) has ended."""
        self._running += 1

    def job_ended(self, status: AgentStatus) -> None:
        """A job ended with `status` (ExecutionSuccess/Failed); Idle or Paused follows if it
        was the last (the daemon's `resume_jobs` says what follows otherwise)."""
        self._running = max(0, self._running - 1)
        self.set(status)
        if self._running == 0:
            self.set(self.rest)

    def resume_jobs(self, phase: AgentStatus) -> None:
        """A job ended while others run: the status goes back to theirs (`phase`)."""
        if self._running:
            self.set(phase)

    def accepting(self, yes: bool, phase: AgentStatus | None = None) -> None:
        """The agent claims again (`yes`) or holds back: Paused at once, even with jobs
        running; on resuming, Idle, or `phase` (the running jobs') when some run."""
        if yes is self._accepting:
            return
        self._accepting = yes
        if not yes:
            self.set(AgentStatus.PAUSED)
        elif self._running == 0:
            self.set(AgentStatus.IDLE)
        elif phase is not None:
            self.set(phase)

    def stopped(self, status: AgentStatus = AgentStatus.PAUSED) -> None:
        """The agent is stopping: Paused ("not accepting jobs") is what the registry keeps,
        or UpdatingAgent when it stops for an upgrade."""
        self._accepting = False
        self.set(status)

    def set(self, status: AgentStatus) -> None:
        """Make `status` the agent's current one (returns at once; reported soon after)."""
        self._latest = status
        if self.on_set is not None:
            self.on_set()
        if self._queue and self._queue[-1] not in MILESTONES and not self._after_job_end():
            self._queue.pop()  # a passing status replaced within SETTLE: folded
        shown = self._queue[-1] if self._queue else (self._sending or self._reported)
        if status is shown and status not in JOB_ENDS:
            return
        self._queue.append(status)
        self._flushed.clear()
        self._wake.set()

    def _after_job_end(self) -> bool:
        """Whether the last status queued is the one that follows a job's end (kept: the
        registry shows ExecutionSuccess/Failed, then what the agent did next)."""
        before = self._queue[-2] if len(self._queue) > 1 else (self._sending or self._reported)
        return before in JOB_ENDS

    async def run(self) -> None:
        """Report the statuses set, in order, until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(SETTLE)  # let a quick succession of passing statuses settle
            self._wake.clear()
            while self._queue:
                status = self._sending = self._queue.popleft()
                try:
                    sent = await self._send(status)
                finally:
                    self._sending = None
                if not sent:
                    self._queue.appendleft(status)  # the registry must end up showing it
                    self._wake.set()
                    self._flushed.set()  # (a stopping agent does not wait for it)
                    await asyncio.sleep(RETRY_PAUSE)
                    break
                self._reported = status
            if not self._queue:
                self._flushed.set()

    async def flushed(self) -> None:
        """Wait until every status set has been reported (or a round of retries failed)."""
        await self._flushed.wait()

    async def _send(self, status: AgentStatus) -> bool:
        try:
            await with_retries(
                lambda: self._client.set_agent_status(self._agent_id, status),
                budget=self._budget,
                what=f"agent status {status.value}",
                retries=self._retries,
            )
        except RegistryError as e:
            log.warning("agent.status_failed", status=status.value, error=str(e))
            return False
        return True
