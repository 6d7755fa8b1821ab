"""After a crash: jobs an earlier run began and never ended are failed, their tools stopped.

A tool the dead agent started may still run (it has its own session). Until tools can be
re-attached to, the honest end is to stop it (SIGTERM to its group and descendants, then
SIGKILL after the grace period) and owe the registry a Failed saying why, so no job stays
stuck in Running and no tool runs on unwatched. The pid is only trusted when the process's
creation time matches the journal's, so a reused pid is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import psutil
import structlog

from agent.jobs.states import JobStatus
from agent.runs.journal import Active, Journal, Owed

log = structlog.get_logger(__name__)


async def recover(journal: Journal, grace: float) -> int:
    """Fail what an earlier run left unfinished; how many jobs that was."""
    unfinished = journal.unfinished()
    for active in unfinished:
        stopped = await asyncio.to_thread(_stop_tool, active, grace)
        message = (
            f"the agent stopped unexpectedly while the job was {active.phase.value}"
            + ("; its tool was still running and has been stopped" if stopped else "")
            + "; submit the job again"
        )
        journal.owe(Owed(active.job_id, active.agent_id, JobStatus.FAILED, message))
        journal.end(active.job_id)
        log.warning("job.recovered", job_id=active.job_id, phase=active.phase.value, tool=stopped)
    return len(unfinished)


def _stop_tool(active: Active, grace: float) -> bool:
    """Stop the job's tool and its descendants if it still runs; True if it did."""
    if active.tool_pid is None or active.tool_since is None:
        return False
    try:
        leader = psutil.Process(active.tool_pid)
        if abs(leader.create_time() - active.tool_since) > 0.01:
            return False  # the pid was reused by another process
        tree = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return False
    _signal_all(active.tool_pid, tree, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace)
    if alive:
        _signal_all(active.tool_pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=grace)
    return True


def _signal_all(group: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):
        os.killpg(group, sig)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)  # psutil checks the pid was not reused
