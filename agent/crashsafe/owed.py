"""Delivering final statuses: journaled first, sent with retries, and re-sent until they land.

`report` is what a finishing job calls: the status is written to the journal, then sent for
the status retry budget. An outage longer than that leaves it in the journal; `run` (one of
the daemon's tasks) sends what is owed at start, left over from an earlier run or a crash,
and again every poll interval while anything is owed. A registry that refuses the status for
good (409: the job is already final, or canceled; 404: gone) settles the debt too. Phases
the registry missed while it was away (the job reached Uploading, the registry last took
Running) are reported first, in order (`catch_up`), so the job's history skips none; a 409
to the final status is checked the same way (after a restart the agent may not know what
the registry missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3

import structlog

from agent.crashsafe.journal import Journal, Owed
from agent.protocol.states import ACTIVE, catch_up
from agent.registry.client import RegistryClient
from agent.registry.errors import Conflict, NotFound, RegistryError
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

RETRY_BUDGET = 5.0  # seconds per owed status per round of the delivery loop


class OwedUpdates:
    """Final statuses on their way to the registry."""

    def __init__(self, client: RegistryClient, journal: Journal, budget: float) -> None:
        self._client = client
        self._journal = journal
        self._budget = budget
        self._owing = asyncio.Event()
        self._sending: set[str] = set()  # jobs whose status is being sent right now

    async def report(self, owed: Owed) -> bool:
        """Journal `owed`, then send it; False when it is left for the delivery loop."""
        try:
            self._journal.owe(owed)
        except (sqlite3.Error, OSError) as e:  # a full disk must not cost the report itself
            log.error("journal.write_failed", job_id=owed.job_id, error=str(e))  # noqa: TRY400
        if await self._send(owed, self._budget):
            return True
        log.warning("job.report_owed", job_id=owed.job_id, status=owed.status.value)
        self._owing.set()
        return False

    async def run(self, interval: float) -> None:
        """Deliver what is owed, now and every `interval` while anything is; never returns."""
        while True:
            await self.flush()
            self._owing.clear()
            wait = interval if self._journal.owed() else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._owing.wait()

    async def flush(self) -> None:
        """One round: send what is owed, oldest first, until the registry fails to take one."""
        for owed in self._journal.owed():
            if owed.job_id in self._sending:
                continue  # its runner is still sending it: never two senders for one status
            if not await self._send(owed, RETRY_BUDGET):
                return  # the registry is still away: next round
            log.info("job.report_delivered", job_id=owed.job_id, status=owed.status.value)

    async def _send(self, owed: Owed, budget: float) -> bool:
        """True once the registry has the status, or has refused it for good."""
        self._sending.add(owed.job_id)
        try:
            return await self._send_once(owed, budget)
        finally:
            self._sending.discard(owed.job_id)

    async def _send_once(self, owed: Owed, budget: float) -> bool:
        try:
            if owed.acknowledged is not owed.reached:
                await self._caught_up(owed, budget)
            try:
                await self._deliver(owed, budget)
            except Conflict:
                if not await self._caught_up(owed, budget):
                    raise
                await self._deliver(owed, budget)
        except (Conflict, NotFound) as e:
            # Already final (an earlier copy got through, or a user canceled it) or gone.
            log.warning("job.report_refused", job_id=owed.job_id, error=str(e))
        except RegistryError as e:
            if not e.retryable:  # a token refused, say: kept, and said what to fix
                log.error("job.report_rejected", job_id=owed.job_id, error=str(e))  # noqa: TRY400
            return False
        self._journal.paid(owed.job_id)
        return True

    async def _deliver(self, owed: Owed, budget: float) -> None:
        await with_retries(
            lambda: self._client.update_job_status(
                owed.job_id, owed.status, owed.agent_id, owed.message
            ),
            budget=budget,
            what=f"report {owed.status.value}",
        )

    async def _caught_up(self, owed: Owed, budget: float) -> bool:
        """Report the phases the registry missed before `owed`; False when it missed none."""
        job = await with_retries(
            lambda: self._client.get_job(owed.job_id), budget=budget, what="read the job"
        )
        if job.status not in ACTIVE or job.claimed_by != owed.agent_id:
            return False  # final already, canceled, or not ours: the refusal stands
        missed = [s for s in catch_up(job.status, owed.reached) if s != job.status]
        if not missed:
            return False
        for step in missed:
            await with_retries(
                functools.partial(self._client.update_job_status, owed.job_id, step, owed.agent_id),
                budget=budget,
                what=f"report {step.value}",
            )
        log.info("job.phases_caught_up", job_id=owed.job_id, phases=[s.value for s in missed])
        return True
