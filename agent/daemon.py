"""The daemon: claim and run jobs in `max_concurrent_jobs` slots until told to stop.

One `asyncio.TaskGroup` owns the long-lived tasks: the agent-status reporter, the push
listener, the module watcher (agent/modules/watch.py), the dispatch loop and each running
job. The dispatch loop is the only place that lists and claims jobs; the poll timer, push
notices, module changes and finished jobs only wake it (each claim is logged with the reason
it looked). With push healthy, idle polls back off from
`push_poll_interval` to `push_poll_max_interval`; without it they come every `poll_interval`.
`run --once` and `run --until-idle` are the same loop with an exit condition. A registry
that cannot be reached is logged once per outage and retried; a failing job never stops it.
Jobs an earlier run left unfinished (`resume`) take their slots before anything is claimed.
The order the other tasks start and stop in, and why, is in `_start_services` and `_shut_down`.
The agent claims nothing while it is held back (agent/holdback.py: paused by a person, short of
memory or CPU, draining); `status.json` in the state path says what it is doing.
A reload (SIGHUP; agent/reload.py) swaps in new settings (`apply_reload`): the next look and
new jobs read them, and each running job keeps the `JobContext` it started with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from agent import control, pools
from agent.agentstatus import SETTLE
from agent.holdback import Holdback
from agent.jobs.context import JobContext
from agent.jobs.dispatch import claim_next, claim_offered
from agent.jobs.ending import STOPPED
from agent.jobs.outcome import Outcome, Reason
from agent.jobs.recovery import Unfinished
from agent.jobs.runner import JobRunner
from agent.modules.watch import ModuleWatcher
from agent.pools import PoolError
from agent.protocol.states import AGENT_STATUS_FOR_PHASE, PHASES, AgentStatus, JobStatus
from agent.push.listener import PushListener
from agent.registry.errors import RegistryError
from agent.reload import Reloader, ReloadPlan
from agent.stopping import Stop
from agent.systemd import Systemd
from agent.wakeup import Wake, Wakeup

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.health import HealthServer
    from agent.registry.models import Job

log = structlog.get_logger(__name__)

KEEP_OUTCOMES = 10_000
CLAIM_JITTER = 0.02  # seconds: after losing claim races, spread the next look over this
CONTENDED = 0.5  # recent lost races above which an agent tries its page in random order


def push_poll_delay(first: float, cap: float, quiet_polls: int) -> float:
    """Seconds to the next safety-net poll with push healthy: doubling, capped (not below first)."""
    return min(max(first, cap), first * 2.0 ** min(quiet_polls, 30))


@dataclass(frozen=True)
class _Services:
    """The daemon's long-lived tasks besides dispatch and the jobs (None: not configured)."""

    reporter: asyncio.Task[None]
    owed: asyncio.Task[None]
    push: asyncio.Task[None] | None
    watchdog: asyncio.Task[None]
    http: asyncio.Task[None] | None
    status_file: asyncio.Task[None]
    modules: asyncio.Task[None] | None


class Mode(StrEnum):
    """How long the daemon runs."""

    SERVE = "serve"  # until stopped
    ONCE = "once"  # at most one job
    UNTIL_IDLE = "until-idle"  # until no job is offered and none is running


class Daemon:
    """Claims and runs jobs for one announced agent."""

    def __init__(
        self,
        ctx: JobContext,
        stop: Stop | None = None,
        *,
        wakeup: Wakeup | None = None,
        push: PushListener | None = None,
        systemd: Systemd | None = None,
        http: HealthServer | None = None,
        pause: control.PauseSwitch | None = None,
        reloader: Reloader | None = None,
    ) -> None:
        self.ctx = ctx
        self.systemd = systemd or Systemd()
        self.http = http  # health and metrics, when http_address is set
        self.stop = stop or Stop()
        self.wakeup = wakeup or Wakeup()
        self.push = push
        if push is not None:
            push.on_job_status = self._job_status_hint
        # The one-shot modes' exit codes come from these; a daemon serving for months keeps
        # only the recent ones.
        self.outcomes: deque[Outcome] = deque(maxlen=KEEP_OUTCOMES)
        self._jobs: dict[asyncio.Task[Outcome], JobRunner] = {}
        self._claimed_any = False
        self._lost_races = 0  # claims lost to other agents in the last look
        self._contention = 0.0  # lost races, halving with each look: spread claims while high
        self._looked_empty = False  # the last look found nothing to claim
        self._quiet_polls = 0  # idle polls in a row while push is healthy
        self._registry_down = False
        self._down_since = 0.0
        self._mode = Mode.SERVE
        self._since: dict[asyncio.Task[Outcome], float] = {}  # when each job started (epoch)
        self.status_file = control.StatusFile(ctx.settings.state_path, self.snapshot)
        ctx.agent_status.on_set = self.status_file.changed
        self.pause = pause or control.PauseSwitch(ctx.settings.state_path)
        self.pause.on_change = self.pause_changed
        self.held = Holdback(ctx.settings, self.pause, ctx.agent_status, self.status_file.changed)
        self.modules = self._module_watcher() if ctx.settings.watch_modules else None
        self.reloader = reloader or Reloader(ctx.settings.state_path, systemd=self.systemd)

    async def run(
        self, mode: Mode = Mode.SERVE, resume: list[Unfinished] | None = None
    ) -> list[Outcome]:
        """Serve jobs in `mode`; returns the outcomes of the jobs it ran (the last 10,000).

        `resume` are jobs an earlier run of the agent left unfinished: they go on first.

        In the one-shot modes a registry that stays unreachable for the retry budget is an
        error (RegistryUnavailable); the serving daemon waits for it however long it takes.
        """
        self._mode = mode
        if control.take_upgrade_mark(self.ctx.settings.state_path):
            self.ctx.agent_status.set(AgentStatus.SUCCESSFUL_AGENT_UPDATE)
            log.info("agent.upgraded")
        self._hold()  # a pause a person left in place holds from the start: Paused, never Idle
        self.ctx.agent_status.set(self.ctx.agent_status.rest)
        async with asyncio.TaskGroup() as tg:
            services = self._start_services(tg)
            # Resumed jobs take their slots before the first look, so nothing claimed can
            # crowd out a job an earlier run already holds.
            for r in resume or []:
                self._start(tg, JobRunner(self.ctx, r.job, r.active))
            reloads = self._start_reloads(tg)
            await tg.create_task(self._dispatch(tg, mode), name="dispatch")
            reloads.cancel()  # drained: nothing left that a reload could change
            await self._shut_down(services)
        return list(self.outcomes)

    def _start_services(self, tg: asyncio.TaskGroup) -> _Services:
        """Start the tasks that serve the jobs; resumed jobs and dispatch come after them.

        Nothing runs before `run` first awaits, so each is in place before the first job:
        the reporter sends the statuses jobs set, the owed delivery gives the final statuses
        an earlier run left their round at every start, push wakes the dispatch loop, and the
        watchdog and the HTTP listener report on the agent from the start.
        """
        ctx = self.ctx
        return _Services(
            reporter=tg.create_task(ctx.agent_status.run(), name="agent status"),
            owed=tg.create_task(ctx.owed.run(ctx.settings.poll_interval), name="owed"),
            push=tg.create_task(self.push.run(), name="push") if self.push else None,
            watchdog=tg.create_task(
                self.systemd.watchdog(ctx.client, self.describe), name="watchdog"
            ),
            http=tg.create_task(self.http.run(), name="http") if self.http else None,
            status_file=tg.create_task(self.status_file.run(SETTLE), name="status file"),
            modules=tg.create_task(self.modules.run(), name="modules") if self.modules else None,
        )

    def _module_watcher(self) -> ModuleWatcher:
        """The watcher that serves modules as they are added, updated or removed."""
        ctx = self.ctx
        return ModuleWatcher(
            ctx.catalog,
            ctx.client,
            ctx.agent_id,
            ctx.agent_status.set,
            publish=ctx.settings.publish_modules,
            retry_budget=ctx.settings.retry_budget,
            after_update=self._modules_changed,
            idle=lambda: not self._jobs and not ctx.journal.unfinished(),
        )

    def _modules_changed(self) -> None:
        """Modules were updated: the status goes back to what the agent is doing, and the
        dispatch loop looks at once (a job may be waiting for a function just added)."""
        phase = self._jobs_phase()
        if phase is not None:
            self.ctx.agent_status.resume_jobs(phase)
        else:
            self.ctx.agent_status.set(self.ctx.agent_status.rest)
        self.status_file.changed()
        self.wakeup.set(Wake.MODULES)

    def _start_reloads(self, tg: asyncio.TaskGroup) -> asyncio.Task[None]:
        """The task that reloads the configuration when asked (SIGHUP), until dispatch ends."""
        return tg.create_task(self.reloader.run(self), name="reload")

    @property
    def settings(self) -> Settings:
        """The settings in force: what the next look and the next job read."""
        return self.ctx.settings

    async def apply_reload(self, plan: ReloadPlan, new: Settings) -> ReloadPlan:
        """Swap in the applied settings of a reload; the plan as applied.

        One new frozen `Settings` in a new `JobContext`: the dispatch loop and each job
        started from now on read it, while each running job keeps the context it started
        with (its module configuration, timeouts). Pools are changed in the registry first;
        a pool that cannot be joined keeps the old `agent_pools` (refused, with the reason).
        Fewer slots never stop a job: the loop claims again once enough have ended.
        """
        if "agent_pools" in plan.applied:
            plan = await self._change_pools(plan, new)
        settings = plan.settings(self.ctx.settings, new)
        self.ctx = dataclasses.replace(self.ctx, settings=settings)
        self.held.settings = settings
        self.status_file.changed()
        self.wakeup.set(Wake.RELOADED)  # more slots or new pools: look now, not next poll
        return plan

    async def _change_pools(self, plan: ReloadPlan, new: Settings) -> ReloadPlan:
        """Join and leave pools for a reloaded `agent_pools`; refused if the registry cannot."""
        ctx = self.ctx
        old = ctx.settings.agent_pools
        try:
            pool_ids = await pools.rejoin(
                ctx.client, ctx.agent_id, old, new.agent_pools, ctx.settings.retry_budget
            )
        except (PoolError, RegistryError) as e:
            return plan.refuse("agent_pools", f"agent_pools kept as it was: {e}")
        if self.push is not None:
            await self.push.set_pools(pool_ids)
        return plan

    async def _shut_down(self, services: _Services) -> None:
        """Stop the services once dispatch has drained, in the order that keeps the last word true.

        No job of ours runs here any more (a detached one is not ours to report).
        0. The module watcher goes first: a module change is not served by a stopping agent
           (the next start loads it).
        1. Paused first: the registry has no offline status, so Paused ("not accepting jobs")
           is what it keeps; Idle after the agent exited would be a lie. A stop for an upgrade
           (SIGUSR2) says UpdatingAgent instead, and leaves a mark for the next start, which
           says SuccessfulAgentUpdate.
        2. Push closes: `close` publishes the retained presence `offline` while still
           connected (a clean disconnect suppresses the last will, which covers crashes), under
           its own deadline, so the broker hears it without waiting on the registry below.
        3. The reporter goes only once Paused is flushed, since it is what sends it (`flushed`
           also returns after a failed round: a stopping agent does not wait out an outage).
        4. The owed final statuses get a last round while the registry session is open
           (`serve` closes it when `run` returns); the journal keeps the rest for the next start.
        5. The watchdog and the HTTP listener only observe, so they go last: WATCHDOG=1 and
           /readyz stay true while the rounds above wait on the registry.
        """
        if self.stop.detaching.is_set():
            control.mark_upgrading(self.ctx.settings.state_path)
            self.ctx.agent_status.stopped(AgentStatus.UPDATING_AGENT)
        else:
            self.ctx.agent_status.stopped()
        if services.modules is not None:
            services.modules.cancel()  # no module change is served while the agent stops
        if self.push is not None and services.push is not None:
            await self.push.close()
            services.push.cancel()
        await self.ctx.agent_status.flushed()
        services.reporter.cancel()
        await self.ctx.owed.flush()
        services.owed.cancel()
        services.watchdog.cancel()
        if services.http is not None:
            services.http.cancel()
        services.status_file.cancel()
        self.status_file.write(stopped=True)

    async def _dispatch(self, tg: asyncio.TaskGroup, mode: Mode) -> None:
        reason = Wake.START
        while not self.stop.stopping:
            looked = self._may_claim(mode)
            if looked and await self._look(tg, reason):
                reason = Wake.MORE  # more may be waiting: look again at once
                continue
            if self._done(mode, looked=looked):
                break
            reason = await self._pause()
            log.debug("dispatch.woken", reason=reason.value, running=len(self._jobs))
        self.held.drain()
        self.systemd.stopping(self.describe())
        await self._drain()
        log.info("agent.drained")

    @property
    def running(self) -> int:
        """How many jobs are in progress."""
        return len(self._jobs)

    def describe(self) -> str:
        """What the agent is doing, in a few words (systemd's status line)."""
        busy = f"{len(self._jobs)} of {self.ctx.settings.max_concurrent_jobs} slots busy"
        if self.stop.stopping:
            return f"draining, {busy}"
        return f"paused, {busy}" if self.pause.paused else busy

    def snapshot(self) -> dict[str, object]:
        """What the agent is doing, for `status.json` (`istari-agent status` reads it)."""
        jobs = [
            {"job_id": r.job.id, "function": r.job.function.name,
             "phase": r.phases.reached.value, "since": self._since.get(t)}
            for t, r in self._jobs.items()
        ]  # fmt: skip
        latest = self.ctx.agent_status.latest
        return {
            "pid": os.getpid(),
            "agent_id": self.ctx.agent_id,
            "status": latest.value if latest else None,
            "claiming": self.held.reason is None,
            "held": self.held.reason,
            "resources": self.held.short_of,
            "paused_since": self.pause.since,
            "slots": self.ctx.settings.max_concurrent_jobs,
            "jobs": jobs,
            "owed": len(self.ctx.journal.owed()),
        }

    def pause_changed(self) -> None:
        """SIGUSR1 found the pause file changed: act on it now (running jobs go on)."""
        log.info("agent.paused" if self.pause.paused else "agent.unpaused", running=len(self._jobs))
        if not self.stop.stopping:
            self._hold()
        self.wakeup.set(Wake.POLL)

    def _hold(self) -> bool:
        """Whether the agent holds back from claiming now (its status follows: holdback.py)."""
        return self.held.check(len(self._jobs), self._jobs_phase)

    def _jobs_phase(self) -> AgentStatus | None:
        """The agent status of the furthest-along running job (None when none runs)."""
        reached = [r.phases.reached for r in self._jobs.values() if r.phases.reached in PHASES]
        if not reached:
            return None
        return AGENT_STATUS_FOR_PHASE[max(reached, key=PHASES.index)]

    def _may_claim(self, mode: Mode) -> bool:
        """A free slot, the mode allows another job, nobody paused the agent, and the machine
        has room for it."""
        if len(self._jobs) >= self.ctx.settings.max_concurrent_jobs:
            return False
        if mode is Mode.ONCE and self._claimed_any:
            return False
        return not self._hold()

    def _done(self, mode: Mode, *, looked: bool) -> bool:
        """Whether a one-shot mode has nothing more to do (a job may still be running)."""
        offered_nothing = looked and not self._registry_down
        if mode is Mode.ONCE:
            return self._claimed_any or offered_nothing
        if mode is Mode.UNTIL_IDLE:
            return offered_nothing and not self._jobs
        return False

    async def _look(self, tg: asyncio.TaskGroup, reason: Wake) -> bool:
        """List offered jobs and start the first we win; False when none (or registry down)."""
        if self._lost_races and reason is Wake.PUSH:
            # Others in our pool were woken by the same notice: do not all claim at once.
            await asyncio.sleep(random.uniform(0, CLAIM_JITTER))
        try:
            job = await self._offered(reason)
            if job is None:
                spread = self._contention >= CONTENDED
                job, self._lost_races = await claim_next(self.ctx, woken_by=reason, spread=spread)
                self._contention = self._contention / 2 + self._lost_races
        except RegistryError as e:
            self._registry_failed(e)
            return False
        if self._registry_down:
            log.info("registry.available")
            self._registry_down = False
        self._down_since = 0.0
        self._mode = Mode.SERVE
        self._looked_empty = job is None
        if job is None:
            return False
        self._start(tg, JobRunner(self.ctx, job))
        self._quiet_polls = 0
        return True

    async def _offered(self, reason: Wake) -> Job | None:
        """The job a push notice offered, claimed without listing; None to list instead.

        Only when that notice alone woke the agent, the agent's last look found the queue
        empty (so nothing older is waiting for it), and it serves the job's function.
        """
        offer = self.wakeup.offer if reason is Wake.PUSH else None
        if offer is None or not self._looked_empty:
            return None
        if not self.ctx.catalog.serves(offer, self.ctx.host_os):
            return None
        return await claim_offered(self.ctx, offer, reason)

    def _start(self, tg: asyncio.TaskGroup, runner: JobRunner) -> None:
        if runner.resume is None:  # a claim made now (a resumed job was claimed before)
            self.ctx.agent_status.set(AgentStatus.CLAIMING_JOB)
        task = tg.create_task(runner.run(), name=f"job {runner.job.id}")
        self._jobs[task] = runner
        self._since[task] = time.time()
        task.add_done_callback(self._job_done)
        self._claimed_any = True

    def _registry_failed(self, error: RegistryError) -> None:
        if not error.retryable:
            raise error
        now = time.monotonic()
        if not self._registry_down:
            log.warning("registry.unavailable", error=str(error))
            self._registry_down, self._down_since = True, now
        if self._mode is not Mode.SERVE and now - self._down_since > self.ctx.settings.retry_budget:
            raise error

    def _job_status_hint(self, job_id: str, status: str | None) -> None:
        """A push notice says one of our jobs was canceled: its watch looks now (and decides).

        Our own phase moves come back as notices too; only a cancel is worth a look.
        """
        if status != JobStatus.CANCELED:
            return
        for runner in self._jobs.values():
            if runner.job.id == job_id:
                runner.watch.hint()

    def _job_done(self, task: asyncio.Task[Outcome]) -> None:
        runner = self._jobs.pop(task, None)
        self._since.pop(task, None)
        phase = self._jobs_phase()
        if phase is not None:
            self.ctx.agent_status.resume_jobs(phase)
        self.status_file.changed()
        if task.cancelled():
            if runner is None or not runner.detached:  # a detached job has no outcome yet
                self.outcomes.append(STOPPED)
        elif task.exception() is None:  # an exception is a bug: the TaskGroup ends the daemon
            self.outcomes.append(task.result())
        self.wakeup.set(Wake.JOB_FINISHED)

    async def _pause(self) -> Wake:
        """Sleep until the next poll, a wake-up, or a stop request; why it woke."""
        next_poll = self._next_poll()
        log.debug("dispatch.idle", next_poll=next_poll, running=len(self._jobs))
        stopping = asyncio.create_task(self.stop.draining.wait(), name="draining")
        waking = asyncio.create_task(self.wakeup.wait(next_poll), name="wakeup")
        try:
            await asyncio.wait({stopping, waking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            waking.cancel()
        reason = waking.result() if waking.done() and not waking.cancelled() else Wake.POLL
        if reason is Wake.POLL and self.push is not None and self.push.healthy:
            self._quiet_polls += 1
        elif reason is not Wake.POLL:
            self._quiet_polls = 0
        return reason

    def _next_poll(self) -> float | None:
        """Seconds until the next poll; None when every slot is busy (a finished job wakes us)."""
        settings = self.ctx.settings
        if self.held.short_of is None and len(self._jobs) >= settings.max_concurrent_jobs:
            return None
        push_healthy = self.push is not None and self.push.healthy
        if self.held.short_of is None and push_healthy and not self._registry_down:
            cap = settings.push_poll_max_interval
            return push_poll_delay(settings.push_poll_interval, cap, self._quiet_polls)
        return settings.poll_interval

    async def _drain(self) -> None:
        """Let running jobs finish; a forced stop interrupts their tools (or phases) first.

        A detach leaves them: each runner lets go of its job (the tool runs on) and ends.
        """
        forced = asyncio.create_task(self.stop.forced.wait(), name="forced")
        detaching = asyncio.create_task(self.stop.detaching.wait(), name="detaching")
        deadline = self.ctx.settings.drain_timeout
        try:
            async with asyncio.timeout(deadline):
                while self._jobs and not (forced.done() or detaching.done()):
                    await asyncio.wait(
                        {*self._jobs, forced, detaching}, return_when=asyncio.FIRST_COMPLETED
                    )
        except TimeoutError:
            log.warning("agent.drain_timeout", seconds=deadline, running=len(self._jobs))
        finally:
            forced.cancel()
            detaching.cancel()
        if not self._jobs:
            return
        running = dict(self._jobs)
        if self.stop.detaching.is_set():
            for task, runner in running.items():
                runner.detach()
                task.cancel()
            await asyncio.wait(running)
            return
        stopped = await asyncio.gather(*(r.stop(Reason.AGENT_STOPPING) for r in running.values()))
        for task, tool_stopped in zip(running, stopped, strict=True):
            if not tool_stopped:
                task.cancel()
        await asyncio.wait(running)
