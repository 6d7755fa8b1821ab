"""Finding and claiming work: list the jobs offered to this agent and claim the first we win.

A claim is `PUT status=Claimed`. A 409 is a lost race unless re-reading the job shows our own
claim (the answer to an earlier attempt was lost); a claim whose answer never came back is
re-read the same way, so a flaky network neither loses a job nor runs one twice; a 409 to a
request sent only once, with no unanswered attempt before it, is a lost race without a
re-read (the cheap common case in a busy pool). A lost
claim is never retried: the agent moves on, and after its first loss in a look it tries the
rest of the page in random order, so agents of a pool woken together spread over the queue
instead of all chasing its head.

A push notice that offers one job whose function this agent serves is claimed straight away
(`claim_offered`), a round trip less than listing first; a lost one falls back to the listing.

Each claim is journaled before it is sent (and forgotten when it is lost), so an agent killed
before it heard the answer finds the job at its next start instead of leaving it Claimed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from agent.jobs.context import JobContext
from agent.protocol.states import JobStatus
from agent.registry.errors import Conflict, RegistryError, RegistryRejected
from agent.registry.models import Job

if TYPE_CHECKING:
    from agent.protocol.push import Offer

log = structlog.get_logger(__name__)

PAGE_SIZE = 10


async def claim_next(
    ctx: JobContext, woken_by: str = "poll", *, spread: bool = False
) -> tuple[Job | None, int]:
    """Claim one offered job (None when none is left) and count the claims lost to others.

    Raises RegistryError when the registry cannot list jobs. `woken_by` says why the agent
    looked; it is logged with the claim. With `spread` (the agent lost races lately) the page
    is tried in random order from the start.
    """
    candidates = list((await ctx.client.available_jobs(ctx.agent_id, size=PAGE_SIZE)).items)
    if spread:
        random.shuffle(candidates)
    lost = 0
    while candidates:
        job = candidates.pop(0)
        claimed = await claim(ctx, job.id, job.function.name, woken_by)
        if claimed is not None:
            return claimed, lost
        if not lost:
            random.shuffle(candidates)  # contention: spread out (not a security matter)
        lost += 1
    return None, lost


async def claim_offered(ctx: JobContext, offer: Offer, woken_by: str) -> Job | None:
    """Claim the job a push notice offered (its function is served here); None when lost, or
    when the registry refuses it (a stale or forged notice: no such job, not ours to take)."""
    try:
        return await claim(ctx, offer.job_id, offer.function, woken_by)
    except RegistryRejected as e:
        if e.retryable:
            raise
        log.info("job.offer_refused", job_id=offer.job_id, error=str(e))
        return None


async def claim(ctx: JobContext, job_id: str, function: str, woken_by: str = "poll") -> Job | None:
    """Claim job `job_id` (running `function`, for the log); None when another agent has it.
    Retried while the registry fails."""
    tries = _Tries()
    job = _Wanted(job_id, function)
    ctx.journal.claiming(job.id, ctx.agent_id)
    try:
        won = await ctx.retrying(lambda: _attempt(ctx, job, woken_by, tries), what="claim")
    except BaseException:
        # The registry went away mid-claim: if an attempt went unanswered the claim may be
        # ours, so the journal keeps it (Pending) for the next start to ask the registry.
        if not tries.unanswered:
            ctx.journal.end(job.id)
        raise
    if won is None:
        ctx.journal.end(job.id)  # lost for certain
    else:
        ctx.journal.phase(job.id, JobStatus.CLAIMED)
    return won


@dataclass(frozen=True)
class _Wanted:
    """A job to claim: its id, and its function's name (for the log)."""

    id: str
    function: str


@dataclass
class _Tries:
    unanswered: bool = False  # an earlier attempt may have claimed it without our hearing so


async def _attempt(ctx: JobContext, job: _Wanted, woken_by: str, tries: _Tries) -> Job | None:
    try:
        claimed = await ctx.client.update_job_status(job.id, JobStatus.CLAIMED, ctx.agent_id)
    except Conflict as e:
        if not (e.resent or tries.unanswered):
            # The registry refused our one and only request: another agent has it. The
            # common case in a busy pool, so it costs no second request.
            log.debug("job.claim_lost", job_id=job.id)
            return None
        current = await ctx.client.get_job(job.id)  # a lost race, or our own earlier claim
    except RegistryError as e:
        if not e.retryable:
            raise
        tries.unanswered = True
        log.warning("job.claim_unanswered", job_id=job.id, error=str(e))
        current = await ctx.client.get_job(job.id)  # the claim may or may not have happened
        if current.status is JobStatus.PENDING:
            raise  # nobody holds it: claim again after a pause
    else:
        log.info("job.claimed", job_id=job.id, function=job.function, woken_by=woken_by)
        _pickup(ctx, claimed)
        return claimed
    if current.status is JobStatus.CLAIMED and current.claimed_by == ctx.agent_id:
        log.info(
            "job.claimed", job_id=job.id, function=job.function, woken_by=woken_by,
            recovered=True,
        )  # fmt: skip
        return current
    log.debug("job.claim_lost", job_id=job.id, status=current.status.value)
    return None


def _pickup(ctx: JobContext, job: Job) -> None:
    """Count the time from the job's submission to our claim (by the registry's clock)."""
    try:
        created = datetime.fromisoformat(job.created)
    except ValueError:
        return
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - created).total_seconds()
    if seconds >= 0:  # a registry clock ahead of ours says nothing useful
        ctx.metrics.pickup_seconds.observe(seconds)
