"""Where a job an earlier run of the agent left goes on (the decision for `JobRunner`).

From the start (its tool never started, or it was still being validated), at its tool (still
running: re-attach; ended while the agent was away: read how), or at its upload. Local tools
are found by their supervisor (pid and start time, or its command line); Slurm jobs by the
job id the journal recorded, which Slurm still knows after they leave the queue.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from agent.execution import supervisor
from agent.jobs.context import JobContext
from agent.jobs.errors import JobError
from agent.jobs.execute import Reattach
from agent.jobs.states import JobStatus
from agent.jobs.validate import resolve
from agent.jobs.workdir import WorkDir
from agent.registry.models import Job
from agent.runs.journal import Active

log = structlog.get_logger(__name__)


async def resume_point(
    ctx: JobContext, job: Job, r: Active | None
) -> tuple[JobStatus, WorkDir | None, Reattach | None]:
    """(phase to go on from, its work directory, the tool to re-attach to)."""
    if r is None or r.phase not in (JobStatus.RUNNING, JobStatus.UPLOADING):
        return JobStatus.CLAIMED, None, None
    workdir = WorkDir.existing(ctx.settings.output_path, job.id)
    if workdir is None:
        msg = "the agent restarted and the job's work directory is gone; submit the job again"
        raise JobError(msg)
    if r.phase is JobStatus.UPLOADING:
        return JobStatus.UPLOADING, workdir, None
    key = resolve(ctx, job).module.key
    if ctx.executor(key) == "slurm":
        if r.tool_pid is None:  # never submitted (or the id was lost): begin again
            return JobStatus.CLAIMED, None, None
        log.info("job.tool_reattached", slurm_job_id=str(r.tool_pid))
        return JobStatus.RUNNING, workdir, Reattach(r.tool_pid, r.tool_since or time.time())
    status_dir = workdir.supervisor
    proc = await asyncio.to_thread(supervisor.find, status_dir, r.tool_pid, r.tool_since)
    if proc is not None:
        log.info("job.tool_reattached", pid=proc.pid)
        return JobStatus.RUNNING, workdir, Reattach(proc.pid, proc.create_time())
    if supervisor.was_started(status_dir):
        return JobStatus.RUNNING, workdir, Reattach(None, r.tool_since or time.time())
    return JobStatus.CLAIMED, None, None  # the tool never started: begin again
