"""Finding the configuration file for a command, the first-run template, and `istari-agent init`.

The only reader of HOME and the platform for the file's location; the CLI hands over the
environment, as everywhere else.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from agent import configfile
from agent.configfile import ConfigError, Notice
from agent.configwrite import (
    CREDENTIALS_NAME,
    init,
    load_sections,
    write_credentials,
    write_template,
)
from agent.protocol import identity as rules
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.models import AgentCredential, NewAgentKey

CONFIG_ERROR = 2  # a configuration that cannot be used (as click's usage errors)
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
        sys.exit(CONFIG_ERROR)
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
@click.option(
    "--identity-key",
    is_flag=True,
    help="Identity-service mode: make an ES384 key pair, register it with the registry "
    "(authenticated with TOKEN_FILE's token), write its credentials 0600 beside the "
    f"file ({CREDENTIALS_NAME}) and point the agent at them instead of a token.",
)
def init_command(
    registry_url: str, token_file: Path, config_file: Path | None, identity_key: bool
) -> None:
    """Write REGISTRY_URL and the agent token in TOKEN_FILE to the configuration file.

    As `stari agent init` does: the official YAML file, 0600, the `agent:` section's token
    and the `default:` section's registry URL; other sections (`cli:`) and keys stay.
    With --identity-key the token only registers a new key and is not written.
    """
    target = config_file or configfile.official_path(home(os.environ), sys.platform)
    if not registry_url.startswith(("https://", "http://")):
        click.echo(f"config error: {registry_url} is not an http(s):// URL", err=True)
        sys.exit(CONFIG_ERROR)
    if target.suffix == ".toml":
        click.echo(f"config error: {target}: init writes the YAML file, not TOML", err=True)
        sys.exit(CONFIG_ERROR)
    try:
        token = token_file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        click.echo(f"config error: cannot read the token file {token_file}: {e}", err=True)
        sys.exit(CONFIG_ERROR)
    credentials: Path | None = None
    try:
        if identity_key:
            credentials = _make_identity_key(target, registry_url, token)
        init(target, registry_url, token, credentials)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(CONFIG_ERROR)
    if credentials is None:
        click.echo(f"wrote the agent's registry URL and token to {target}")
    else:
        click.echo(
            f"wrote the agent's registry URL and identity credentials {credentials} to {target}"
        )


def _make_identity_key(target: Path, registry_url: str, token: str) -> Path:
    """Register a new key pair; its credential file (0600, beside `target`)."""
    if not token.strip():
        msg = "config error: the token file is empty"
        raise ConfigError(msg)
    agent = load_sections(target)["agent"]  # a file init cannot update: refused before registering
    name = str(agent.get(f"{configfile.PREFIX}display_name") or platform.node() or "istari-agent")
    key = rules.new_private_key()
    new = NewAgentKey(
        public_key_pem=rules.public_pem(key),
        key_id=f"key-{secrets.token_hex(4)}",  # the SDK's keypair helpers' form
        display_name=name,
        key_name=name,
    )
    try:
        made = asyncio.run(_register(registry_url, token.strip(), new))
    except RegistryError as e:
        click.echo(f"error: cannot register the key with {registry_url}: {e}", err=True)
        sys.exit(1)
    path = (target.parent / CREDENTIALS_NAME).absolute()
    write_credentials(path, rules.Credentials(made.client_id, made.key_id, key).to_json())
    return path


async def _register(registry_url: str, token: str, new: NewAgentKey) -> AgentCredential:
    async with RegistryClient(registry_url, token) as client:
        return await client.register_agent_key(new)
