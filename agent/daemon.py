"""The daemon: announce the agent, then claim and run jobs until told to stop.

One `asyncio.TaskGroup` owns the long-lived tasks (the dispatch loop and the job it runs).
The dispatch loop is the only place that lists and claims jobs; the poll timer (and, later,
push messages) only wake it. `run --once` and `run --until-idle` are the same loop with an
exit condition. A registry that cannot be reached is logged once per outage and retried; a
job that fails never stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from enum import StrEnum

import structlog

from agent.jobs.context import JobContext
from agent.jobs.dispatch import claim_next
from agent.jobs.outcome import Outcome, Reason
from agent.jobs.runner import JobRunner
from agent.registry.errors import RegistryError
from agent.stopping import Stop
from agent.wakeup import Wakeup

log = structlog.get_logger(__name__)


class Mode(StrEnum):
    """How long the daemon runs."""

    SERVE = "serve"  # until stopped
    ONCE = "once"  # at most one job
    UNTIL_IDLE = "until-idle"  # until no job is offered


class Daemon:
    """Claims and runs jobs for one announced agent."""

    def __init__(self, ctx: JobContext, stop: Stop | None = None) -> None:
        self.ctx = ctx
        self.stop = stop or Stop()
        self.wakeup = Wakeup()
        self.outcomes: list[Outcome] = []
        self._registry_down = False
        self._down_since = 0.0
        self._mode = Mode.SERVE

    async def run(self, mode: Mode = Mode.SERVE) -> list[Outcome]:
        """Serve jobs in `mode`; returns the outcomes of the jobs it ran.

        In the one-shot modes a registry that stays unreachable for the retry budget is an
        error (RegistryUnavailable); the serving daemon waits for it however long it takes.
        """
        self._mode = mode
        async with asyncio.TaskGroup() as tg:
            reporter = tg.create_task(self.ctx.agent_status.run(), name="agent status")
            await tg.create_task(self._dispatch(tg, mode), name="dispatch")
            await self.ctx.agent_status.flushed()
            reporter.cancel()
        return self.outcomes

    async def _dispatch(self, tg: asyncio.TaskGroup, mode: Mode) -> None:
        while not self.stop.stopping:
            job_found = await self._take_one(tg)
            if mode is Mode.ONCE and (job_found or not self._registry_down):
                return
            if job_found:
                continue  # more may be waiting: look again at once
            if mode is Mode.UNTIL_IDLE and not self._registry_down:
                return
            await self._pause()
        log.info("agent.drained")

    async def _take_one(self, tg: asyncio.TaskGroup) -> bool:
        """Claim and run one job; False when none was offered (or the registry is down)."""
        try:
            job = await claim_next(self.ctx)
        except RegistryError as e:
            if not e.retryable:
                raise
            now = time.monotonic()
            if not self._registry_down:
                log.warning("registry.unavailable", error=str(e))
                self._registry_down, self._down_since = True, now
            if self._mode is not Mode.SERVE and now - self._down_since > self._budget:
                raise
            return False
        if self._registry_down:
            log.info("registry.available")
            self._registry_down = False
        self._down_since = 0.0
        self._mode = Mode.SERVE
        if job is None:
            return False
        runner = JobRunner(self.ctx, job)
        task = tg.create_task(runner.run(), name=f"job {job.id}")
        self.outcomes.append(await self._await_job(runner, task))
        return True

    @property
    def _budget(self) -> float:
        return self.ctx.settings.retry_budget

    async def _await_job(self, runner: JobRunner, task: asyncio.Task[Outcome]) -> Outcome:
        """The job's outcome; a forced stop interrupts the tool (or the phase) first."""
        forced = asyncio.create_task(self.stop.forced.wait(), name="forced")
        try:
            await asyncio.wait({task, forced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        if not task.done() and not await runner.stop(Reason.AGENT_STOPPING):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            return await task
        return Outcome(Reason.AGENT_STOPPING, "the agent stopped before the job finished")

    async def _pause(self) -> None:
        """Sleep until the next poll, a wake-up, or a stop request."""
        stopping = asyncio.create_task(self.stop.draining.wait(), name="draining")
        waking = asyncio.create_task(self.wakeup.wait(self.ctx.settings.poll_interval))
        try:
            await asyncio.wait({stopping, waking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waking.cancel()
