"""After a restart: what an earlier run of the agent left unfinished, and how each job goes on.

`unfinished` asks the registry where each job the journal still holds stands:

- its final status is already owed: the delivery loop has it, nothing is left to do here;
- the claim was sent but its answer never heard (journal phase Pending): the job is ours if
  the registry says we claimed it, and is forgotten otherwise;
- a user canceled it meanwhile, it is already final, gone, or held by another agent: its tool,
  if it still runs, is stopped (a Slurm job is scancel'ed), and nothing is reported;
- otherwise it is resumed, and its runner asks `resume_point` where to go on: from the start
  (validation: its tool never started), at its tool (a `ResumedJob` that re-attaches to a tool
  still running, or reads how one ended while the agent was away), or at its upload (which
  registers no output twice).

A tool's pid is only trusted with its recorded start time or its supervisor's command line,
so a reused pid is never signalled. Slurm jobs are found by the job id the journal recorded,
which Slurm still knows after they leave the queue.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import psutil
import structlog

from agent.crashsafe.journal import Active
from agent.execution import supervisor
from agent.execution.slurm import cancel_slurm_job
from agent.execution.tree import ProcessTree
from agent.jobs.context import JobContext
from agent.jobs.credentials import remove_credentials
from agent.jobs.errors import JobError
from agent.jobs.validate import resolve
from agent.jobs.workdir import WorkDir
from agent.modules.catalog import Resolved
from agent.protocol.states import ACTIVE, JobStatus
from agent.registry.errors import NotFound, RegistryError
from agent.registry.models import Job

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Unfinished:
    """A job to go on with, as the registry and the journal know it."""

    job: Job
    active: Active


async def unfinished(ctx: JobContext) -> list[Unfinished]:
    """The jobs an earlier run left to go on with; the others are settled here."""
    resumes: list[Unfinished] = []
    for active in ctx.journal.unfinished():
        if ctx.journal.owes(active.job_id):
            ctx.journal.end(active.job_id)  # only the report was left, and it is owed
            continue
        job = await _current(ctx, active.job_id)
        if job is not None and _ours(job, active):
            log.info("job.resuming", job_id=job.id, phase=active.phase.value)
            resumes.append(Unfinished(job, active))
            continue
        if job is not None and _on_slurm(ctx, job) and active.tool_pid is not None:
            stopped = await cancel_slurm_job(str(active.tool_pid), ctx.tool_env)
        else:
            stopped = await asyncio.to_thread(stop_orphan, ctx, active)
        ctx.journal.end(active.job_id)
        if active.phase is not JobStatus.PENDING or stopped:
            status = job.status.value if job is not None else "gone"
            log.warning("job.dropped", job_id=active.job_id, status=status, tool_stopped=stopped)
    return resumes


def _on_slurm(ctx: JobContext, job: Job) -> bool:
    """Whether the job's tool went to Slurm (by the module's executor in the config)."""
    key = job.function.module_name
    return ctx.executor(key) == "slurm"


def _ours(job: Job, active: Active) -> bool:
    return job.status in ACTIVE and job.claimed_by == active.agent_id


async def _current(ctx: JobContext, job_id: str) -> Job | None:
    try:
        # Still away after the retry budget: the start fails.
        return await ctx.retrying(lambda: ctx.client.get_job(job_id), what="read an unfinished job")
    except NotFound:
        return None
    except RegistryError as e:
        if e.retryable:
            raise
        return None


def stop_orphan(ctx: JobContext, active: Active) -> bool:
    """Stop the job's tool and its descendants if it still runs; True if it did."""
    workdir = WorkDir.existing(ctx.settings.output_path, active.job_id)
    if workdir is None:
        return False
    proc = supervisor.find(workdir.supervisor, active.tool_pid, active.tool_since)
    remove_credentials(workdir)  # the job is over for this agent
    if proc is None:
        return False
    tree = ProcessTree(proc.pid)
    tree.signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree.alive(), timeout=ctx.settings.kill_grace)
    if alive:
        tree.signal(signal.SIGKILL)
        psutil.wait_procs(tree.alive(), timeout=ctx.settings.kill_grace)
    tree.kill_group()
    return True


@dataclass(frozen=True)
class Reattach:
    """The tool an earlier run of the agent started for this job, still running."""

    pid: int  # its supervisor (a local tool) or its Slurm job id
    since: float  # when it started (epoch seconds): the time limit counts from here


@dataclass(frozen=True)
class ResumedJob:
    """A job an earlier run of the agent took past validation, ready to go on from there."""

    job: Job
    resolved: Resolved
    workdir: WorkDir
    at: JobStatus  # Running (at its tool) or Uploading (its tool ended well: upload)
    tool: Reattach | None = None  # at Running: the tool to re-attach to; None: it has ended


async def resume_point(ctx: JobContext, job: Job, r: Active) -> ResumedJob | None:
    """Where `job` goes on after a restart; None: from the start (validation)."""
    if r.phase not in (JobStatus.RUNNING, JobStatus.UPLOADING):
        return None
    workdir = WorkDir.existing(ctx.settings.output_path, job.id)
    if workdir is None:
        msg = "the agent restarted and the job's work directory is gone; submit the job again"
        raise JobError(msg)
    resolved = resolve(ctx, job, check_versions=False)  # checked when it was validated
    if r.phase is JobStatus.UPLOADING:
        return ResumedJob(job, resolved, workdir, JobStatus.UPLOADING)
    if ctx.executor(resolved.module.key) == "slurm":
        if r.tool_pid is None:  # never submitted (or the id was lost): begin again
            return None
        log.info("job.tool_reattached", slurm_job_id=str(r.tool_pid))
        tool = Reattach(r.tool_pid, r.tool_since or time.time())
        return ResumedJob(job, resolved, workdir, JobStatus.RUNNING, tool)
    status_dir = workdir.supervisor
    proc = await asyncio.to_thread(supervisor.find, status_dir, r.tool_pid, r.tool_since)
    if proc is not None:
        log.info("job.tool_reattached", pid=proc.pid)
        tool = Reattach(proc.pid, proc.create_time())
        return ResumedJob(job, resolved, workdir, JobStatus.RUNNING, tool)
    if supervisor.was_started(status_dir):  # it ended while the agent was away
        return ResumedJob(job, resolved, workdir, JobStatus.RUNNING)
    return None  # the tool never started: begin again
