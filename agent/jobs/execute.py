"""The Running phase: start the tool through the backend and judge how it ended.

`ValidatedJob → ExecutionResult`. A tool that exits 0 succeeded as far as this phase can tell
(its outputs are judged next); any other end is a `ToolFailed` or `ToolTimedOut` whose message
gives the exit code or signal and the last lines the tool printed. After a restart the phase
re-attaches (`Reattach`) to the tool an earlier run of the agent started, or reads how it
ended while the agent was away, instead of starting it again.
"""

from __future__ import annotations

import signal as signals
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent.execution.base import ExitInfo, LaunchError, LaunchSpec, Running
from agent.execution.supervisor import read_status
from agent.jobs.context import JobContext
from agent.jobs.errors import AgentStopping, JobCanceled, ToolFailed, ToolTimedOut
from agent.jobs.outcome import Reason
from agent.jobs.validate import ValidatedJob
from agent.logtail import read_tail

TAIL_BYTES = 4096
UPDATES_VARIABLE = "ISTARI_AGENT_UPDATES_FILE"  # where the tool may report (runs/updates.py)
TAIL_LINES = 8
WORK_DIR_FULL = "work_dir_full"  # why the agent stopped a tool whose work directory outgrew it


@dataclass(frozen=True)
class ExecutionResult:
    """A tool that exited 0."""

    validated: ValidatedJob
    exit: ExitInfo


@dataclass(frozen=True)
class Reattach:
    """The tool an earlier run of the agent started for this job."""

    pid: int | None  # its supervisor, still running; None when it ended while we were away
    since: float  # when it started (epoch seconds): the time limit counts from here


async def execute(
    ctx: JobContext,
    v: ValidatedJob,
    started: Callable[[Running], Awaitable[None]] | None = None,
    reattach: Reattach | None = None,
    ended: Callable[[ExitInfo], None] | None = None,
) -> ExecutionResult:
    """Run the tool to its end; `started` gets the handle (to interrupt it) once it runs."""
    timeout = ctx.settings.process_timeout
    if reattach is not None:
        timeout = max(0.0, timeout - (time.time() - reattach.since))
    spec = LaunchSpec(
        argv=v.argv,
        cwd=v.workdir.temp_dir,
        env={**ctx.tool_env, UPDATES_VARIABLE: str(v.workdir.updates_file)},
        log_path=v.workdir.log_file,
        timeout=timeout,
        grace=ctx.settings.kill_grace,
        status_dir=v.workdir.supervisor,
        marker=(UPDATES_VARIABLE, str(v.workdir.updates_file)),
    )
    if reattach is not None and reattach.pid is None:
        info = _ended_while_away(spec)
    else:
        try:
            backend = ctx.backend_for(v.resolved.module.key)
            if reattach is not None and reattach.pid is not None:
                running = backend.adopt(reattach.pid, spec)
            else:
                running = await backend.start(spec)
        except LaunchError as e:
            raise ToolFailed(str(e)) from None
        if started is not None:
            await started(running)
        info = await running.wait()
    if ended is not None:
        ended(info)  # however it ended: the run record keeps what it used
    return judge(ctx, v, info)


def _ended_while_away(spec: LaunchSpec) -> ExitInfo:
    status = read_status(spec.status_dir)
    return ExitInfo(
        exit_code=status.exit_code if status else None,
        signal=status.signal if status else None,
        timed_out=False,
        interrupted=None,
        wall_time=0.0,
    )


def judge(ctx: JobContext, v: ValidatedJob, info: ExitInfo) -> ExecutionResult:
    """The tool's end as this phase's result, or the JobError that says what went wrong."""
    if info.timed_out:
        limit = f"the process timeout ({ctx.settings.process_timeout:g} s)"
        msg = f"the tool ran past {info.detail or limit} and was stopped"
        msg += _tail_suffix(v.workdir.log_file)
        raise ToolTimedOut(msg, exit_code=info.exit_code, signal=info.signal)
    if info.interrupted == Reason.CANCELED_BY_USER:
        msg = "canceled by a user"
        raise JobCanceled(msg, exit_code=info.exit_code, signal=info.signal)
    if info.interrupted == WORK_DIR_FULL:
        mb = ctx.settings.max_work_dir_mb
        msg = f"the tool's work directory grew past max_work_dir_mb ({mb:g} MB) and the tool "
        msg += f"was stopped{_tail_suffix(v.workdir.log_file)}"
        raise ToolFailed(msg, exit_code=info.exit_code, signal=info.signal)
    if info.interrupted == Reason.AGENT_STOPPING:
        msg = "the agent was stopped while the tool ran; submit the job again"
        raise AgentStopping(msg, exit_code=info.exit_code, signal=info.signal)
    if not info.succeeded:
        msg = f"the tool {describe_exit(info)}{_tail_suffix(v.workdir.log_file)}"
        raise ToolFailed(msg, exit_code=info.exit_code, signal=info.signal)
    return ExecutionResult(v, info)


def describe_exit(info: ExitInfo) -> str:
    """'exited with code 3' or 'was killed by SIGSEGV' (pure)."""
    if info.detail is not None and info.interrupted is None:
        return info.detail  # the backend knows better (a scheduler's end state)
    if info.signal is not None:
        try:
            name = signals.Signals(info.signal).name
        except ValueError:
            name = f"signal {info.signal}"
        return f"was killed by {name}"
    if info.interrupted is not None:
        return f"was stopped ({info.interrupted})"
    if info.exit_code is None:
        return "ended while the agent was away without recording an exit status (it was killed)"
    return f"exited with code {info.exit_code}"


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


def _tail_suffix(path: Path) -> str:
    tail = log_tail(path)
    return f"; last output:\n{tail}" if tail else "; it printed nothing"
