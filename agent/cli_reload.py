"""`istari-agent reload`: have the running agent read its configuration again, and say what
it applied and what it refused (agent/reload.py decides; `reload.json` carries the answer)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from agent import control
from agent.cli_config import CONFIG_ERROR
from agent.cli_control import NOT_RUNNING
from agent.cli_service import state_path_option

REFUSED = 1  # some changed settings wait for a restart, or no answer came in time
WAIT = 10.0  # seconds for the agent's answer by default
_CHECK_EVERY = 0.05  # the answer is a file the agent writes: looked at this often


def answer_after(state_path: Path, since: float, deadline: float) -> dict[str, Any] | None:
    """The first reload answer started at or after `since`; None when none came in time."""
    end = time.monotonic() + deadline
    while True:
        found = control.read_reload_answer(state_path)
        if found is not None and float(found.get("started", 0)) >= since:
            return found
        if time.monotonic() >= end:
            return None
        time.sleep(_CHECK_EVERY)


def describe(pid: int, answer: dict[str, Any]) -> tuple[list[str], int]:
    """The lines `reload` prints for the agent's answer, and the exit code (pure)."""
    if not answer.get("ok"):
        error = answer.get("error") or "unknown error"
        return [
            f"agent {pid}: configuration refused, nothing changed (it runs on the settings "
            f"it had): {error}"
        ], CONFIG_ERROR
    applied, refused = answer.get("applied") or [], answer.get("refused") or []
    lines = [f"agent {pid}: configuration reloaded"]
    if not answer.get("changed"):
        lines[0] += ": nothing changed"
    if applied:
        lines.append("applied: " + ", ".join(applied))
    lines += [f"refused: {r.get('reason') or r.get('setting')}" for r in refused]
    if answer.get("note"):
        lines.append(f"note: {answer['note']}")
    return lines, REFUSED if refused else 0


@click.command("reload")
@state_path_option("The state path of the agent to reload.")
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=WAIT,
    show_default=True,
    help="Seconds to wait for the agent's answer.",
)
def reload_command(state_path: Path, wait: float) -> None:
    """Have the running agent read its configuration again (as SIGHUP and systemctl reload do).

    The settings that can change while it runs (log level, poll intervals, slots, pools,
    module configurations, ...) apply to the next claim and to new jobs; running jobs keep
    theirs. Every other change is refused with the reason, until a restart. Exits 0 when
    everything changed was applied, 1 when something was refused (or no answer came), 2 when
    the configuration cannot be used (the agent keeps its settings), 3 when no agent runs.
    """
    since = time.time()
    try:
        pid = control.tell_agent(state_path, signal.SIGHUP)
        if pid is None:
            click.echo(f"not running (state path {state_path})", err=True)
            sys.exit(NOT_RUNNING)
        answer = answer_after(state_path, since, wait)
    except PermissionError as e:
        click.echo(f"error: {e}: run as the agent's user (or root)", err=True)
        sys.exit(REFUSED)
    if answer is None:
        click.echo(
            f"agent {pid}: asked to reload; no answer within {wait:g} s "
            "(its log says what it did: config.reloaded, config.reload_failed)",
            err=True,
        )
        sys.exit(REFUSED)
    lines, code = describe(pid, answer)
    for line in lines:
        click.echo(line)
    sys.exit(code)
