"""One claimed job, from Claimed to its one `Outcome`, reported last whatever happened.

`_phases` reads as the job's life, each step taking the last one's value: where to start
(a `ResumedJob` after a restart: recovery.py) or `validate` → `ValidatedJob`; `launch` → the
`Running` tool the runner holds and waits on → `ExecutionResult`; `read_outputs` → `upload` →
`UploadedOutputs`. Each move is reported to the registry (phases.py). What happens on the way
is noted in an `Ending`; `settle` (ending.py) decides the outcome from it, once. In `finally`,
under `asyncio.shield`, the runner uploads a failed tool's log, reports the terminal status
with a long retry budget, and tidies the work directory: a job never goes without an end.

A registry that is unreachable for longer than the retry budget does not end the job: phase
moves are told later (phases.py), and validation and upload wait for it. A runner told to
`detach` stops working the job but leaves its tool running for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from typing import Any, TypeVar

import psutil
import structlog

from agent.concurrently import both
from agent.config import KeepWorkDirs
from agent.crashsafe.journal import Active, Owed
from agent.execution.base import ExitInfo, Running
from agent.jobs.context import JobContext
from agent.jobs.credentials import remove_credentials
from agent.jobs.ending import WORK_DIR_FULL, Ending, is_bug, settle
from agent.jobs.execute import ExecutionResult, execution_result, launch
from agent.jobs.monitor import ToolMonitor
from agent.jobs.outcome import Outcome, Reason
from agent.jobs.outputs import ProducedOutput, read_outputs, resource_inputs
from agent.jobs.phases import PhaseReports
from agent.jobs.recovery import ResumedJob, resume_point
from agent.jobs.transfers import TransferProgress
from agent.jobs.upload import UploadedOutputs, upload, upload_log
from agent.jobs.validate import ValidatedJob, validate
from agent.jobs.watch import CancelWatch
from agent.jobs.workdir import WorkDir
from agent.protocol.states import AGENT_STATUS_FOR_PHASE, JobStatus
from agent.registry.errors import RegistryError
from agent.registry.models import Job
from agent.runs.recorder import RunRecorder

T = TypeVar("T")

log = structlog.get_logger(__name__)

MAX_MESSAGE = 4000  # characters of a status message (failure messages carry log tails)
REGISTRY_PAUSE = 1.0  # seconds between attempts of a phase that waits for the registry


class JobRunner:
    """Runs one job this agent has claimed."""

    def __init__(self, ctx: JobContext, job: Job, resume: Active | None = None) -> None:
        self.ctx = ctx
        self.job = job
        self.resume = resume  # where an earlier run of the agent left the job, if it did
        self.workdir: WorkDir | None = None
        self.running: Running | None = None  # the tool, once started: the runner holds it
        self.ending = Ending()  # what happened, for `settle`
        self.phases = PhaseReports(ctx, job.id, job.status if resume else JobStatus.CLAIMED)
        self.record = RunRecorder(ctx.records, job, ctx.agent_id)
        self.phases.on_move = lambda phase: self.record.step(phase.value)
        self._tool_phase = False  # from just before the tool starts until it ended
        self._detached = False
        self.watch = CancelWatch(ctx, job.id)

    async def run(self) -> Outcome:
        """Work the job through its phases; always returns (or is cancelled) having reported."""
        started = time.monotonic()
        self.ctx.agent_status.job_started()
        with structlog.contextvars.bound_contextvars(job_id=self.job.id):
            try:
                await self._watched()
            except Exception as e:  # a failure ends this job, never the agent
                self.ending.error = e
                if is_bug(e):
                    log.exception("job.internal_error")
            except BaseException as e:  # a cancel: passed on once the job is reported
                self.ending.error = e
                raise
            finally:
                outcome = settle(self.ending)
                if self._detached:
                    log.info("job.detached", phase=self.phases.reached.value)
                else:
                    await _uncancellable(self._finish(outcome, time.monotonic() - started))
        return outcome

    async def _watched(self) -> None:
        """The phases, with a watch for a user's cancel beside them (it stops them if seen)."""
        phases = asyncio.create_task(self._phases(), name=f"phases {self.job.id}")
        watch = asyncio.create_task(self.watch.until_canceled(), name=f"watch {self.job.id}")
        try:
            await asyncio.wait({phases, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not phases.done():
                log.info("job.canceling")
                if not await self.stop(Reason.CANCELED_BY_USER):
                    phases.cancel()  # not in the tool: validating or uploading stops here
                await asyncio.wait({phases})
        finally:
            watch.cancel()
            if not phases.done():  # we are being cancelled ourselves (a forced stop)
                phases.cancel()
                await asyncio.wait({phases})
        if phases.cancelled() and self.ending.stop is Reason.CANCELED_BY_USER:
            return  # the cancel stopped them where they were
        phases.result()  # what ended them early, if anything, is raised to be noted

    async def _phases(self) -> None:
        resumed = await self._resumed()
        prepared = resumed if resumed else await self._patiently("validate", self._validate)
        if resumed is None or resumed.at is JobStatus.RUNNING:
            executed = self.ending.tool = await self._execute(prepared)
            if not executed.succeeded:
                return  # what its end means is settled with the rest (ending.py)
        schema = prepared.resolved.variant.function_schema
        resources = resource_inputs(prepared.workdir)  # what version_of may name
        outputs = read_outputs(schema, prepared.workdir, resources)
        await self.phases.move(JobStatus.UPLOADING)
        self.ending.uploaded = await self._upload(prepared.workdir, outputs)

    async def _resumed(self) -> ResumedJob | None:
        """Where an earlier run of the agent left the job; None: from the start."""
        if self.resume is None:
            return None
        # Known before anything can fail, so that the end tidies it whatever happens next.
        self.workdir = WorkDir.existing(self.ctx.settings.output_path, self.job.id)
        return await resume_point(self.ctx, self.job, self.resume)

    async def _validate(self) -> ValidatedJob:
        # Inputs download while the registry hears of Validating: one round trip less before
        # the tool starts. The state table guards the order (a Failed that overtakes a late
        # Validating leaves the job Failed; the Validating is refused).
        self.workdir = WorkDir.create(self.ctx.settings.output_path, self.job.id)
        progress = self._transfers(JobStatus.VALIDATING, "downloading inputs", "downloaded inputs")
        async with progress:
            _, validated = await both(
                self.phases.move(JobStatus.VALIDATING),
                validate(self.ctx, self.job, self.workdir, progress),
            )
        self.record.inputs_from(self.workdir.input_file)
        return validated

    async def _execute(self, job: ValidatedJob | ResumedJob) -> ExecutionResult:
        """Start the tool (or go back to it after a restart) and wait for its end."""
        self._tool_phase = True  # a stop from here on goes to the tool, once it starts
        try:
            await self.phases.move(JobStatus.RUNNING)
            async with self._monitor(job.workdir) as monitor:
                tool = await launch(self.ctx, job)
                info = tool if isinstance(tool, ExitInfo) else await self._wait(tool, monitor)
                self.record.resources(info.wall_time, info.cpu_seconds, info.peak_rss_kb)
        finally:
            self._tool_phase = False
        return execution_result(self.ctx, info, job.workdir)

    async def _wait(self, running: Running, monitor: ToolMonitor) -> ExitInfo:
        """Hold the started tool (followed, journaled) until it ends; a stop asked already
        stops it now, so a stop never leaves an orphan."""
        self.running = running
        monitor.watch(running.pid)
        if self._detached:
            running.detach()
        if running.handle is not None:  # what a restarted agent re-attaches by
            self.ctx.journal.tool(self.job.id, running.handle, _started_at(running))
        log.info("job.tool_started", tool=running.ident)
        if self.ending.stop is not None:
            await running.interrupt(self.ending.stop.value)
        return await running.wait()

    async def _upload(self, workdir: WorkDir, outputs: list[ProducedOutput]) -> UploadedOutputs:
        progress = self._transfers(JobStatus.UPLOADING, "uploading outputs", "uploaded outputs")
        async with progress:
            uploaded = await self._patiently(
                "upload", lambda: upload(self.ctx, self.job, workdir, outputs, progress)
            )
        self.record.outputs([asdict(u) for u in uploaded.outputs])
        return uploaded

    def _transfers(self, phase: JobStatus, verb: str, past: str) -> TransferProgress:
        """The progress of `phase`'s transfers, told as a message on `phase` (transfers.py)."""
        ctx = self.ctx

        async def tell(text: str) -> None:
            await ctx.client.update_job_status(self.job.id, phase, ctx.agent_id, text)

        return TransferProgress(
            verb, past,
            every=ctx.settings.progress_report_interval, tell=tell, note=self.record.entry,
            acknowledged=lambda: self.phases.acknowledged is phase,
        )  # fmt: skip

    def _monitor(self, workdir: WorkDir) -> ToolMonitor:
        return ToolMonitor(
            self.ctx, self.job.id, workdir, self.record,
            lambda: self.phases.acknowledged is JobStatus.RUNNING, self._work_dir_full,
        )  # fmt: skip

    async def _work_dir_full(self) -> None:
        if self.running is not None:
            await self.running.interrupt(WORK_DIR_FULL)

    async def _patiently(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """`work()`, tried again for as long as the registry stays unreachable."""
        while True:
            try:
                return await work()
            except RegistryError as e:
                if not e.away:
                    raise
                log.warning("job.waiting_for_registry", what=what, error=str(e))
            await asyncio.sleep(REGISTRY_PAUSE)  # each try already retried for the budget

    async def stop(self, reason: Reason) -> bool:
        """Stop the job's tool (polite signal, grace, kill); False when no tool is in play.

        A tool that is starting right now is stopped as soon as it has started (`_wait`).
        When this returns False the caller cancels the job's task.
        """
        self.ending.asked_to_stop(reason)
        if not self._tool_phase:
            return False
        if self.running is not None:
            await self.running.interrupt(reason.value)
        return True

    @property
    def detached(self) -> bool:
        return self._detached

    def detach(self) -> None:
        """Stop working the job without ending it: its tool runs on, the journal keeps it."""
        self._detached = True
        if self.running is not None:
            self.running.detach()

    async def _finish(self, outcome: Outcome, seconds: float) -> None:
        if self.workdir is not None:
            remove_credentials(self.workdir)  # whatever keep_work_dirs says
        if self.workdir is not None and outcome.reason in (Reason.TOOL_FAILED, Reason.TIMEOUT):
            with contextlib.suppress(RegistryError):  # the registry is away: the report matters
                await upload_log(self.ctx, self.job, self.workdir)
        if outcome.reason is not Reason.CANCELED_BY_USER:
            await self._report(outcome)
        self.ctx.journal.end(self.job.id)  # after the final status is owed: never a gap
        o, job_log = outcome, self.workdir.log_file if self.workdir else None
        self.record.end(o.status.value, o.reason.value, o.message, o.exit_code, job_log)
        self.phases.ended()
        self.ctx.metrics.jobs.labels(outcome.reason.value).inc()
        self.ctx.agent_status.job_ended(AGENT_STATUS_FOR_PHASE[outcome.status])
        self._tidy(outcome)
        log.info(
            "job.finished",
            status=outcome.status.value,
            reason=outcome.reason.value,
            exit_code=outcome.exit_code,
            seconds=round(seconds, 3),
            message=outcome.message if not outcome.ok else None,
        )

    async def _report(self, outcome: Outcome) -> None:
        """Report the terminal status: journaled first, retried, delivered later if need be."""
        message = outcome.message
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 20] + "\n[... truncated]"
        phases = self.phases
        owed = Owed(
            self.job.id,
            self.ctx.agent_id,
            outcome.status,
            message,
            phases.reached,
            phases.acknowledged,
        )
        await self.ctx.owed.report(owed)

    def _tidy(self, outcome: Outcome) -> None:
        keep = self.ctx.settings.keep_work_dirs
        if self.workdir is None or keep is KeepWorkDirs.ALWAYS:
            return
        if keep is KeepWorkDirs.FAILED and not outcome.ok:
            log.info("job.workdir_kept", path=str(self.workdir.root))
            return
        self.workdir.remove()


async def _uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end even if we are cancelled meanwhile, then pass the cancel on.

    `asyncio.shield` alone would let the caller return while the report is still in flight
    (and the registry session close under it); this waits for it.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


def _started_at(running: Running) -> float:
    """When the tool started (epoch seconds): with its pid, it tells a reused pid apart."""
    if running.pid is not None:
        with contextlib.suppress(psutil.Error):
            return float(psutil.Process(running.pid).create_time())
    return time.time()
