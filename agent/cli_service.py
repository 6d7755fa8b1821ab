"""`istari-agent stop` and `install-service`: operating the agent as a service."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC

from agent import install
from agent.config import DEFAULT_STATE_PATH
from agent.crashsafe.lock import holder


def state_path_option(text: str) -> Callable[[FC], FC]:
    """`--state-path` (or ISTARI_DIGITAL_AGENT_STATE_PATH): which agent a command is about."""
    return click.option(
        "--state-path",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="ISTARI_DIGITAL_AGENT_STATE_PATH",
        default=DEFAULT_STATE_PATH,
        show_default=True,
        help=text,
    )


@click.command("stop")
@click.option(
    "--detach",
    is_flag=True,
    help="Exit at once and leave running tools to the next start (for upgrades).",
)
@state_path_option("The state path of the agent to stop.")
def stop_command(detach: bool, state_path: Path) -> None:
    """Ask the agent running with this state path to stop (it drains: running jobs finish).

    Run it twice to stop the running jobs too (they fail with agent_stopping). With --detach
    the agent exits at once and the next start re-attaches to the tools it leaves running.
    """
    pid = holder(state_path)
    if pid is None:
        click.echo(f"no agent is running with the state path {state_path}", err=True)
        sys.exit(1)
    os.kill(pid, signal.SIGUSR2 if detach else signal.SIGTERM)
    if detach:
        click.echo(f"agent {pid}: exiting now; its running tools go on until its next start")
    else:
        click.echo(f"agent {pid}: draining (running jobs finish); run again to stop them too")


@click.command("install-service")
@click.option("--user", is_flag=True, help="A user service, for machines where you have no root.")
@click.option("--registry-url", default=None, help="Written into the config skeleton.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A file holding the registry API token, copied into the 0600 config skeleton.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    help="Write under this directory instead of / (packaging; nothing is activated).",
)
def install_service_command(
    user: bool, registry_url: str | None, token_file: Path | None, root: Path
) -> None:
    """Write the systemd unit, the service user and a config skeleton (see systemd/README.md)."""
    real = root.resolve() == Path("/")
    if real and not user and os.geteuid() != 0:
        click.echo("error: a system service needs root: run with sudo, or use --user", err=True)
        sys.exit(2)
    token = token_file.read_text().strip() if token_file else None
    program = Path(sys.executable).parent / "istari-agent"
    try:
        the_plan = install.plan(
            user=user,
            executable=program if program.exists() else Path(sys.argv[0]).resolve(),
            interpreter=Path(sys.executable).resolve(),
            home=Path.home(),
            url=registry_url,
            token=token,
        )
        written = install.write(the_plan, root)
    except (install.InstallError, OSError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    for path in written:
        click.echo(f"wrote {path}")
    for note in the_plan.notes:
        click.echo(f"note: {note}")
    steps = the_plan.next_steps
    if real:
        steps = install.activate(steps)  # the reloads; starting it stays the operator's call
    click.echo("next: " + " && ".join(steps) if steps else "done")
