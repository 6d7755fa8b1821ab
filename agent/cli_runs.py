"""`istari-agent runs list|show|log|steps|delete`: the run records of a state path."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from agent.cli_service import state_path_option
from agent.runs.api import NOT_FOUND_HINT
from agent.runs.model import MAX_PAGE, Run, RunFilter, steps_csv
from agent.runs.store import RECORDS, RunRecords

_STATE = state_path_option("The state path of the agent whose runs to read.")
_JSON = click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")


def _records(state_path: Path) -> RunRecords:
    path = state_path / RECORDS
    if not path.exists():
        click.echo(f"no run records in {state_path} (has an agent run with this state path?)")
        sys.exit(1)
    return RunRecords(path)


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


@click.group()
def runs() -> None:
    """The agent's run records: what ran, each phase, the outcome and the outputs."""


@runs.command("list")
@_STATE
@_JSON
@click.option("--status", default=None, help="Only runs in this status (Completed, Failed...).")
@click.option("--keyword", default=None, help="Only runs whose function, module or id has this.")
@click.option("--since", default=None, help="Only runs started at or after (ISO 8601 time).")
@click.option("--until", default=None, help="Only runs started before (ISO 8601 time).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
def list_runs(state_path: Path, as_json: bool, limit: int, page: int, **query: str | None) -> None:
    """The most recent runs first, a page at a time."""
    strings = {k: v for k, v in query.items() if v} | {"limit": str(limit), "page": str(page)}
    try:
        f = RunFilter.parse(strings)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    found = _records(state_path).list(f)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in found], indent=2))
        return
    for r in found:
        took = f"{r.ended - r.started:7.1f} s" if r.ended else "running"
        click.echo(f"{r.id[:8]}  {_when(r.started)}  {r.status:<10} {took:>9}  {r.function}")


@runs.command("show")
@click.argument("run_id")
@_STATE
@_JSON
def show_run(run_id: str, state_path: Path, as_json: bool) -> None:
    """One run with its steps (RUN_ID: a run id, a job id, or a unique start of either)."""
    _, run = _one(state_path, run_id)
    click.echo(json.dumps(run.as_json(), indent=2) if as_json else _describe(run))


def _one(state_path: Path, run_id: str) -> tuple[RunRecords, Run]:
    records = _records(state_path)
    run = records.get(run_id)
    if run is None:
        click.echo(
            f"no run {run_id}; `istari-agent runs list` shows them {NOT_FOUND_HINT}", err=True
        )
        sys.exit(1)
    return records, run


@runs.command("log")
@click.argument("run_id")
@_STATE
def run_log(run_id: str, state_path: Path) -> None:
    """The tool's log of one run (its last 10 MiB)."""
    records, run = _one(state_path, run_id)
    path = records.log_path(run.id)
    if not path.exists():
        click.echo(f"run {run.id} has no log kept (it never reached its tool?)", err=True)
        sys.exit(1)
    sys.stdout.buffer.write(path.read_bytes())


@runs.command("steps")
@click.argument("run_id")
@_STATE
def run_steps(run_id: str, state_path: Path) -> None:
    """One run's steps as CSV: phase, started, ended (ISO 8601, UTC), seconds."""
    _, run = _one(state_path, run_id)
    click.echo(steps_csv(run), nl=False)


@runs.command("delete")
@click.argument("run_id")
@_STATE
def run_delete(run_id: str, state_path: Path) -> None:
    """Delete one run's record and its kept log."""
    records, run = _one(state_path, run_id)
    records.delete(run.id)
    click.echo(f"deleted run {run.id}")


def _describe(r: Run) -> str:
    lines = [
        f"run {r.id} of job {r.job_id}",
        f"  {r.function} ({r.module} {r.module_version}) on agent {r.agent_id}",
        f"  {r.status}" + (f" ({r.reason}, exit code {r.exit_code})" if r.reason else ""),
    ]
    lines += [f"  {r.message}"] if r.message else []
    if r.wall_s is not None:
        used = f"  tool: {r.wall_s:.3f} s wall"
        used += f", {r.cpu_s:.3f} s CPU" if r.cpu_s is not None else ""
        used += f", peak RSS {r.peak_rss_kb / 1024:.1f} MiB" if r.peak_rss_kb else ""
        lines.append(used)
    for s in r.steps:
        took = f"{s.ended - s.started:.3f} s" if s.ended else "..."
        lines.append(f"  step {s.phase:<11} {_when(s.started)}  {took}")
    lines += [f"  input  {i['name']} ({i['type']}) {i.get('file', '')}".rstrip() for i in r.inputs]
    lines += [f"  output {o['name']}: {o['kind']} {o['resource_id']}" for o in r.outputs]
    lines += [f"  progress {r.progress:g}%"] if r.progress is not None else []
    for e in r.entries:
        tags = " ".join(f"{k}={v}" for k, v in e.tags.items())
        lines.append(f"  {_when(e.time)} {e.level:<5} {e.message} {tags}".rstrip())
    return "\n".join(lines)
