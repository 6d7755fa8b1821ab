"""Telling the registry a job's phases, in order, even when it was away while they happened.

Each move is retried for the job's retry budget. A registry still unreachable after that
does not stop the job: the work goes on, the phase is recorded in the journal, and the next
move first reports the phases the registry missed (`catch_up`), so the job's history is
complete and in order once the registry is back. A refused move is a user's cancel when the
job now says Canceled, and an error otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from agent.jobs.context import JobContext
from agent.jobs.errors import JobCanceled, JobError
from agent.protocol.states import AGENT_STATUS_FOR_PHASE, JobStatus, catch_up
from agent.registry.errors import Conflict, RegistryError

log = structlog.get_logger(__name__)


class PhaseReports:
    """The phases of one job, as this agent has reported them."""

    def __init__(self, ctx: JobContext, job_id: str, acknowledged: JobStatus) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.acknowledged = acknowledged  # the last phase the registry took
        self.reached = acknowledged  # the last phase the job reached here
        self._since = time.monotonic()  # when it reached it
        self.on_move: Callable[[JobStatus], None] | None = None  # the run record's step

    def ended(self) -> None:
        """The job ended: count the time spent in its last phase."""
        self._timed(self.reached)

    def _timed(self, phase: JobStatus) -> None:
        now = time.monotonic()
        self.ctx.metrics.phase_seconds.labels(phase.value).observe(now - self._since)
        self._since = now

    async def move(self, status: JobStatus) -> None:
        """The job reached `status`: tell the registry (and any phase it missed) if it can."""
        log.info("job.phase", phase=status.value)
        if status is not self.reached:
            self._timed(self.reached)
        self.reached = status
        if self.on_move is not None:
            self.on_move(status)
        self.ctx.journal.phase(self.job_id, status)
        self.ctx.agent_status.set(AGENT_STATUS_FOR_PHASE[status])
        for step in catch_up(self.acknowledged, status):
            if not await self._send(step):
                break

    async def _send(self, status: JobStatus) -> bool:
        """Report one move; False when the registry stayed unreachable (told later)."""
        ctx = self.ctx
        try:
            await ctx.retrying(
                lambda: ctx.client.update_job_status(self.job_id, status, ctx.agent_id),
                what=f"report {status.value}",
                retries=ctx.settings.status_update_retry_limit,
            )
        except Conflict as e:
            current = await ctx.client.get_job(self.job_id)
            if current.status is JobStatus.CANCELED:
                msg = "canceled by a user"
                raise JobCanceled(msg) from None
            msg = f"the registry refused the move to {status.value}: {e.detail}"
            raise JobError(msg) from None
        except RegistryError as e:
            if not e.away:
                raise
            log.warning("job.phase_unreported", phase=status.value, error=str(e))
            return False
        self.acknowledged = status
        return True
