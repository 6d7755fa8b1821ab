"""Finding the configuration file for a command, the first-run template, and `istari-agent init`.

The only reader of HOME and the platform for the file's location; the CLI hands over the
environment, as everywhere else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from agent import configfile
from agent.configfile import ConfigError, Notice
from agent.configwrite import init, write_template

NO_CONFIG = 78  # EX_CONFIG: no configuration anywhere; a template was written to fill in


def home(env: Mapping[str, str]) -> Path:
    """The user's home directory: $HOME, else the password database's."""
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def find_config(
    given: Path | None, env: Mapping[str, str], platform: str = sys.platform
) -> tuple[Path | None, list[Notice]]:
    """The file to read: the one given (--config, ISTARI_AGENT_CONFIG), else the first found
    where the official agent looks; with a notice when it is at a pre-8.3 location.

    With no file anywhere and no token in the environment, the template is written at the
    official path and the command exits NO_CONFIG with one line saying what to fill in.
    """
    if given is not None:
        return given, []
    found, legacy = configfile.discover(home(env), platform)
    if found is not None:
        notices = []
        if legacy:
            new = configfile.official_path(home(env), platform)
            notices.append(Notice("config.legacy_location", {"file": str(found), "new": str(new)}))
        return found, notices
    token = configfile.PREFIX + "registry_api_token"
    if any(k.lower() == token and v for k, v in env.items()):
        return None, []  # configured by the environment alone (containers)
    target = configfile.official_path(home(env), platform)
    try:
        write_template(target)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    click.echo(
        f"no configuration found: wrote a template to {target}; set "
        f"{configfile.PREFIX}registry_api_url and {token} in it "
        "(or run `istari-agent init REGISTRY_URL TOKEN_FILE`), then start again",
        err=True,
    )
    sys.exit(NO_CONFIG)


@click.command("init")
@click.argument("registry_url")
@click.argument("token_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ISTARI_AGENT_CONFIG",
    default=None,
    help="The file to write [env: ISTARI_AGENT_CONFIG; default: the official path].",
)
def init_command(registry_url: str, token_file: Path, config_file: Path | None) -> None:
    """Write REGISTRY_URL and the agent token in TOKEN_FILE to the configuration file.

    As `stari agent init` does: the official YAML file, 0600, the `agent:` section's token
    and the `default:` section's registry URL; other sections (`cli:`) and keys stay.
    """
    target = config_file or configfile.official_path(home(os.environ), sys.platform)
    if not registry_url.startswith(("https://", "http://")):
        click.echo(f"config error: {registry_url} is not an http(s):// URL", err=True)
        sys.exit(2)
    if target.suffix == ".toml":
        click.echo(f"config error: {target}: init writes the YAML file, not TOML", err=True)
        sys.exit(2)
    try:
        token = token_file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        click.echo(f"config error: cannot read the token file {token_file}: {e}", err=True)
        sys.exit(2)
    try:
        init(target, registry_url, token)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    click.echo(f"wrote the agent's registry URL and token to {target}")
