"""The `istari-agent` command line: the only place that reads the environment and flags."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import click

from agent import __version__, logs
from agent.jobs.states import JobStatus
from agent.localregistry.app import GiB, RegistrySettings
from agent.localregistry.server import serve_forever
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.submit import Submission, follow, parse_param, submit


@click.group()
@click.version_option(__version__, prog_name="istari-agent")
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["debug", "info", "warning", "error"]),
    show_default=True,
)
def main(log_level: str) -> None:
    """istari-agent: run Istari jobs on this machine, or serve a local registry."""
    logs.configure(log_level)


@main.group()
def registry() -> None:
    """The embedded Istari-compatible registry."""


@registry.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, type=int, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("istari-registry-data"),
    show_default=True,
    help="Where the database, blobs and admin token live.",
)
@click.option(
    "--max-blob-size",
    type=int,
    default=64 * GiB,
    show_default=True,
    help="Largest upload accepted, in bytes (larger ones get 413).",
)
@click.option("--public-url", default=None, help="The URL clients reach this registry at.")
def registry_serve(
    host: str, port: int, data_dir: Path, max_blob_size: int, public_url: str | None
) -> None:
    """Serve the local registry (token: $ISTARI_LOCAL_REGISTRY_TOKEN or DIR/admin-token)."""
    settings = RegistrySettings(
        data_dir=data_dir,
        admin_token=os.environ.get("ISTARI_LOCAL_REGISTRY_TOKEN") or None,
        max_blob_size=max_blob_size,
        public_url=public_url,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(settings, host, port))


def _registry_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option(
        "--registry-url",
        envvar="ISTARI_REGISTRY_URL",
        required=True,
        help="Registry base URL [env: ISTARI_REGISTRY_URL].",
    )(f)
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="File holding the bearer token [else env: ISTARI_REGISTRY_AUTH_TOKEN].",
    )(f)


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        return token_file.read_text().strip()
    token = os.environ.get("ISTARI_REGISTRY_AUTH_TOKEN")
    if not token:
        msg = "set ISTARI_REGISTRY_AUTH_TOKEN or pass --token-file"
        raise click.UsageError(msg)
    return token


@main.command("submit")
@click.argument("model_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--function", "function", required=True, help="Function name, e.g. @example:fn.")
@click.option(
    "--param", "params", multiple=True, help="key=value (value parsed as JSON if it can be)."
)
@click.option("--pool", "pool_id", default=None, help="Assign the job to this agent pool id.")
@click.option("--agent", "agent_id", default=None, help="Assign the job to this agent id.")
@click.option("--module", "module_name", default=None, help="Module providing the function.")
@click.option("--wait/--no-wait", default=False, help="Follow the job to its end.")
@_registry_options
def submit_command(
    model_file: Path,
    function: str,
    params: tuple[str, ...],
    pool_id: str | None,
    agent_id: str | None,
    module_name: str | None,
    wait: bool,
    registry_url: str,
    token_file: Path | None,
) -> None:
    """Upload MODEL_FILE as a model and submit a job running FUNCTION on it."""
    try:
        parameters = dict(parse_param(p) for p in params)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--param") from None
    sub = Submission(model_file, function, parameters, pool_id, agent_id, module_name)
    token = _token(token_file)
    try:
        code = asyncio.run(_submit(registry_url, token, sub, wait))
    except RegistryError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    sys.exit(code)


async def _submit(url: str, token: str, sub: Submission, wait: bool) -> int:
    async with RegistryClient(url, token) as client:
        job = await submit(client, sub)
        click.echo(f"submitted job {job.id} ({sub.function} on {sub.model_file.name})")
        if not wait:
            return 0

        def show(status: JobStatus, message: str | None) -> None:
            click.echo(f"  {status}" + (f": {message}" if message else ""))

        done = await follow(client, job.id, show)
        return 0 if done.status is JobStatus.COMPLETED else 1


@main.command("demo")
def demo_command() -> None:
    """Start a local registry and walk a model and a job through it, end to end."""
    from agent.demo import run_demo

    sys.exit(asyncio.run(run_demo()))
