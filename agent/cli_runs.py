"""`istari-agent runs list|show`: the run records of a state path, for people and scripts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from agent.config import DEFAULT_STATE_PATH
from agent.runs.records import RECORDS, Run, RunRecords

_STATE = click.option(
    "--state-path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ISTARI_DIGITAL_AGENT_STATE_PATH",
    default=DEFAULT_STATE_PATH,
    show_default=True,
    help="The state path of the agent whose runs to read.",
)
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
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def list_runs(state_path: Path, as_json: bool, status: str | None, limit: int) -> None:
    """The most recent runs first."""
    found = _records(state_path).list(limit=limit, status=status)
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
    run = _records(state_path).get(run_id)
    if run is None:
        click.echo(f"no run {run_id}; `istari-agent runs list` shows them", err=True)
        sys.exit(1)
    click.echo(json.dumps(run.as_json(), indent=2) if as_json else _describe(run))


def _describe(r: Run) -> str:
    lines = [
        f"run {r.id} of job {r.job_id}",
        f"  {r.function} ({r.module} {r.module_version}) on agent {r.agent_id}",
        f"  {r.status}" + (f" ({r.reason}, exit code {r.exit_code})" if r.reason else ""),
    ]
    lines += [f"  {r.message}"] if r.message else []
    for s in r.steps:
        took = f"{s.ended - s.started:.3f} s" if s.ended else "..."
        lines.append(f"  step {s.phase:<11} {_when(s.started)}  {took}")
    lines += [f"  input  {i['name']} ({i['type']}) {i.get('file', '')}".rstrip() for i in r.inputs]
    lines += [f"  output {o['name']}: {o['kind']} {o['resource_id']}" for o in r.outputs]
    return "\n".join(lines)
