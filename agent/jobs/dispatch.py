"""Finding and claiming work: list the jobs offered to this agent and claim the first we win.

A claim is `PUT status=Claimed`. A 409 is a lost race unless re-reading the job shows our own
claim (the answer to an earlier attempt was lost); a claim whose answer never came back is
re-read the same way, so a flaky network neither loses a job nor runs one twice.
"""

from __future__ import annotations

import structlog

from agent.jobs.context import JobContext
from agent.jobs.states import JobStatus
from agent.registry.errors import Conflict, RegistryError
from agent.registry.models import Job
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

PAGE_SIZE = 10


async def claim_next(ctx: JobContext) -> Job | None:
    """Claim one offered job, or None when there is none (RegistryError if it cannot list)."""
    page = await ctx.client.available_jobs(ctx.agent_id, size=PAGE_SIZE)
    for job in page.items:
        claimed = await claim(ctx, job)
        if claimed is not None:
            return claimed
    return None


async def claim(ctx: JobContext, job: Job) -> Job | None:
    """Claim `job`; None when another agent has it. Retried while the registry fails."""

    async def attempt() -> Job | None:
        try:
            claimed = await ctx.client.update_job_status(job.id, JobStatus.CLAIMED, ctx.agent_id)
        except Conflict:
            current = await ctx.client.get_job(job.id)  # a lost race, or our own earlier claim
        except RegistryError as e:
            if not e.retryable:
                raise
            log.warning("job.claim_unanswered", job_id=job.id, error=str(e))
            current = await ctx.client.get_job(job.id)  # the claim may or may not have happened
            if current.status is JobStatus.PENDING:
                raise  # nobody holds it: claim again after a pause
        else:
            log.info("job.claimed", job_id=job.id, function=job.function.name)
            return claimed
        if current.status is JobStatus.CLAIMED and current.claimed_by == ctx.agent_id:
            log.info("job.claimed", job_id=job.id, function=job.function.name, recovered=True)
            return current
        log.debug("job.claim_lost", job_id=job.id, status=current.status.value)
        return None

    return await with_retries(attempt, budget=ctx.settings.retry_budget, what="claim")
