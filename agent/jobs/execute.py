"""The Running phase's two steps: launch the tool through its backend, then take its end.

`ValidatedJob | ResumedJob → Running → ExecutionResult`. `launch` starts the tool, or after a
restart re-attaches to the one an earlier run of the agent started (or reads how it ended
while the agent was away) instead of starting it again; the runner holds the `Running` handle
and waits on it. `execution_result` makes the tool's end the phase's result, with the last
lines the tool printed when it did not succeed; what that end means for the job is decided
with the rest of its ending (ending.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from agent.execution.base import ExitInfo, LaunchError, LaunchSpec, Running
from agent.execution.supervisor import read_status
from agent.jobs.context import JobContext
from agent.jobs.errors import ToolFailed
from agent.jobs.recovery import Reattach, ResumedJob
from agent.jobs.validate import ValidatedJob
from agent.jobs.workdir import WorkDir
from agent.logtail import read_tail

UPDATES_VARIABLE = "ISTARI_AGENT_UPDATES_FILE"  # where the tool may report (runs/updates.py)
TAIL_BYTES = 4096  # of the log read for a failure message, and at most this many lines:
TAIL_LINES = 8


@dataclass(frozen=True)
class ExecutionResult:
    """How the tool ended, and what a message about a failed end names."""

    exit: ExitInfo
    tail: str  # the last lines it printed, read when it did not succeed
    process_timeout: float  # the limits it ran under (seconds, and MB of work directory)
    max_work_dir_mb: float

    @property
    def succeeded(self) -> bool:
        return self.exit.succeeded


async def launch(ctx: JobContext, job: ValidatedJob | ResumedJob) -> Running | ExitInfo:
    """The tool, started or re-attached to; how it ended, when it ended while we were away.

    ToolFailed when the backend cannot start it.
    """
    timeout = ctx.settings.process_timeout
    try:
        match job:
            case ValidatedJob(argv=argv):
                spec = _spec(ctx, job.workdir, argv, timeout)
                return await ctx.backend_for(job.resolved.module.key).start(spec)
            case ResumedJob(tool=Reattach(pid=pid, since=since)):
                left = max(0.0, timeout - (time.time() - since))  # it counts from the start
                spec = _spec(ctx, job.workdir, [], left)  # no argv: the tool already runs
                return ctx.backend_for(job.resolved.module.key).adopt(pid, spec)
            case _:
                return _ended_while_away(job.workdir)
    except LaunchError as e:
        raise ToolFailed(str(e)) from None


def execution_result(ctx: JobContext, info: ExitInfo, workdir: WorkDir) -> ExecutionResult:
    """The Running phase's result from how the tool ended."""
    tail = "" if info.succeeded else log_tail(workdir.log_file)
    settings = ctx.settings
    return ExecutionResult(info, tail, settings.process_timeout, settings.max_work_dir_mb)


def _spec(ctx: JobContext, workdir: WorkDir, argv: list[str], timeout: float) -> LaunchSpec:
    updates = str(workdir.updates_file)
    return LaunchSpec(
        argv=argv,
        cwd=workdir.temp_dir,
        env={**ctx.tool_env, UPDATES_VARIABLE: updates},
        log_path=workdir.log_file,
        timeout=timeout,
        grace=ctx.settings.kill_grace,
        status_dir=workdir.supervisor,
        marker=(UPDATES_VARIABLE, updates),
    )


def _ended_while_away(workdir: WorkDir) -> ExitInfo:
    status = read_status(workdir.supervisor)
    return ExitInfo(
        exit_code=status.exit_code if status else None,
        signal=status.signal if status else None,
        timed_out=False,
        interrupted=None,
        wall_time=0.0,
    )


def log_tail(path: Path, max_bytes: int = TAIL_BYTES, max_lines: int = TAIL_LINES) -> str:
    """The last lines of a log file, bounded however much the tool printed."""
    try:
        text, cut = read_tail(path, max_bytes)
    except OSError:
        return ""
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[1:]  # the first line is probably cut
    return "\n".join(line[:300] for line in lines[-max_lines:])
