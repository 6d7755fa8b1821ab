"""`istari-agent pause`, `resume` and `status`: what a person asks of a running agent, and what
it is doing (agent/control.py keeps both in the state path)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from agent import control
from agent.cli_service import state_path_option
from agent.crashsafe.lock import holder

NOT_RUNNING = 3  # `status`: no agent runs with this state path (as `systemctl status` says)


# What `pause` and `resume` say: with no agent running, and to a running one.
_SAID = {
    True: ("paused: no agent runs with the state path {path}; it starts paused",
           "agent {pid}: paused (claims no new job; running jobs go on)"),
    False: ("resumed: no agent runs with the state path {path}; it starts claiming",
            "agent {pid}: resumed (claims jobs again)"),
}  # fmt: skip


def _switch(state_path: Path, *, paused: bool) -> None:
    """Write the pause file (or remove it) and tell a running agent to read it now."""
    control.set_paused(state_path, paused=paused)
    pid = control.tell_agent(state_path)
    idle, running = _SAID[paused]
    click.echo(idle.format(path=state_path) if pid is None else running.format(pid=pid))


@click.command("pause")
@state_path_option("The state path of the agent to pause.")
def pause_command(state_path: Path) -> None:
    """Stop claiming new jobs; running jobs go on. Lasts until `resume`, across restarts."""
    _switch(state_path, paused=True)


@click.command("resume")
@state_path_option("The state path of the agent to resume.")
def resume_command(state_path: Path) -> None:
    """Claim jobs again after `pause`."""
    _switch(state_path, paused=False)


@click.command("status")
@state_path_option("The state path of the agent to describe.")
def status_command(state_path: Path) -> None:
    """Say what the agent is doing: claiming or paused, its running jobs, its owed reports.

    Exits 0 when an agent runs with this state path, 3 when none does.
    """
    pid = holder(state_path)
    snapshot = control.read_status(state_path)
    paused = control.paused_since(state_path) is not None
    if pid is None:
        click.echo(f"not running (state path {state_path})" + (", paused" if paused else ""))
        if snapshot is not None and snapshot.get("owed"):
            click.echo(f"owed reports: {snapshot['owed']} (delivered at its next start)")
        sys.exit(NOT_RUNNING)
    for line in describe(pid, snapshot or {}, time.time()):
        click.echo(line)


def describe(pid: int, snapshot: dict[str, Any], now: float) -> list[str]:
    """The lines `status` prints for a running agent's snapshot."""
    held = snapshot.get("held")
    if held == "paused":
        doing = "paused by a person (istari-agent resume to claim again)"
    elif held == "resources":
        doing = f"holding back: {snapshot.get('resources') or 'short of resources'}"
    elif held == "draining":
        doing = "draining (stopping once its jobs end)"
    else:
        doing = "claiming jobs"
    jobs = snapshot.get("jobs") or []
    lines = [
        f"agent {snapshot.get('agent_id', '?')} (pid {pid}): {doing}",
        f"status in the registry: {snapshot.get('status') or 'unknown'}",
        f"jobs: {len(jobs)} of {snapshot.get('slots', '?')} slots busy",
    ]
    for job in jobs:
        since = job.get("since")
        age = f"{now - since:.0f} s" if isinstance(since, (int, float)) else "?"
        lines.append(f"  {job.get('job_id')}  {job.get('function')}  {job.get('phase')}  {age}")
    lines.append(f"owed reports: {snapshot.get('owed', 0)}")
    return lines
