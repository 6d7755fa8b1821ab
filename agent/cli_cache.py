"""`istari-agent cache list|clear`: the input cache of a state path."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from agent.cache.shared import CACHE
from agent.cache.store import clear, read_index
from agent.cli_service import state_path_option
from agent.crashsafe.lock import holder
from agent.humanize import human_bytes

_STATE = state_path_option("The state path of the agent whose input cache this is.")


@click.group()
def cache() -> None:
    """The input cache: downloaded inputs kept by address, so a model is fetched once."""


@cache.command("list")
@_STATE
def list_cache(state_path: Path) -> None:
    """Each cached input, most recently used first, with the total and the limit."""
    entries, limit = read_index(state_path / CACHE)
    rows = sorted(entries.values(), key=lambda e: e.used, reverse=True)
    for e in rows:
        used = datetime.fromtimestamp(e.used, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{e.sha[:16]}  {human_bytes(e.size):>10}  {used}  {e.name or '-'}")
    total = human_bytes(sum(e.size for e in rows))
    bound = f"of {human_bytes(limit)}" if limit is not None else "(no limit recorded yet)"
    click.echo(f"{len(rows)} cached input(s), {total} {bound} in {state_path / CACHE}")


@cache.command("clear")
@_STATE
def clear_cache(state_path: Path) -> None:
    """Remove every cached input (refused while an agent runs with this state path)."""
    pid = holder(state_path)
    if pid is not None:
        # The running agent holds the index in memory and may be copying a cached file into a
        # job right now; clearing under it would be undone at its next write.
        click.echo(
            f"an agent (pid {pid}) is running with the state path {state_path}: stop it "
            "first (`istari-agent stop`), then clear the cache",
            err=True,
        )
        sys.exit(1)
    freed = clear(state_path / CACHE)
    click.echo(f"cleared the input cache in {state_path / CACHE}: freed {human_bytes(freed)}")
