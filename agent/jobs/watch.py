"""Watching a running job for a user's cancel: a jittered status check, or at once on a push hint.

The registry is the only source of truth: a push notice (or anything else calling `hint`) only
makes the watcher look now instead of at its next check. Checks are spread by ±20 % so that
many jobs started together do not all ask at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from agent.jobs.context import JobContext
from agent.protocol.states import JobStatus
from agent.registry.errors import RegistryError

log = structlog.get_logger(__name__)


class CancelWatch:
    """Looks at one job's status until it says Canceled."""

    def __init__(self, ctx: JobContext, job_id: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self._hint = asyncio.Event()

    def hint(self) -> None:
        """Look now (a push notice said the job's status changed)."""
        self._hint.set()

    async def until_canceled(self) -> None:
        """Return once the registry says the job is Canceled; runs until cancelled otherwise."""
        interval = self.ctx.settings.cancel_check_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval * random.uniform(0.8, 1.2)):
                    await self._hint.wait()
            self._hint.clear()
            try:
                job = await self.ctx.client.get_job(self.job_id)
            except RegistryError as e:  # an outage must not end the job: look again later
                log.debug("job.cancel_check_failed", error=str(e))
                continue
            if job.status is JobStatus.CANCELED:
                log.info("job.cancel_seen")
                return
