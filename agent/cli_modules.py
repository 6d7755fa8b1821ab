"""`istari-agent modules list|lint|install|remove|publish`: the modules on this machine.

`list` shows what `modules_path` holds (and what the agent would refuse, with why); `lint`
checks one module and gives every problem in one pass; `install` puts a module directory or
archive in place (checked first, then moved in whole, so a running agent serves it at once
and never sees half of it); `remove` takes one away. A running agent follows all of these
without a restart (agent/modules/watch.py).

`publish` publishes a module the way people do on the platform: on a hosted registry
modules are published by people with the platform's CLI (`stari client publish`); an agent
only reports what it has installed (`publish_modules` is off by default). This is our
stand-in for that CLI, with the registry and token of `istari-agent submit`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click

from agent import configfile
from agent.cli import client_token, config_option, registry_options
from agent.cli_config import home
from agent.config import DEFAULT_MODULES_PATH, load_config
from agent.configfile import ConfigError
from agent.identity import REPORTED_AGENT_VERSION
from agent.modules.catalog import MANIFEST_FILE, InstalledModule, load_module, scan
from agent.modules.checksum import module_checksum
from agent.modules.install import InstallError, install, remove
from agent.modules.lint import errors_only, lint
from agent.protocol.manifest import ManifestError
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError


@click.group()
def modules() -> None:
    """Modules: list, lint, install, remove, or publish one (as `stari client publish` does)."""


def _path_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option(
        "--modules-path",
        "modules_path",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="ISTARI_DIGITAL_AGENT_MODULES_PATH",
        default=None,
        help="The modules directory [default: the config's modules_path].",
    )(f)
    return config_option(f)


def _settings_for(config_file: Path | None, modules_path: Path | None) -> tuple[Path, str]:
    """The modules path and the agent version to check against: flags, else the config file
    (when one is given or found where the agent looks), else the defaults."""
    env = os.environ
    found = config_file or configfile.discover(home(env), sys.platform)[0]
    if found is None:
        return modules_path or DEFAULT_MODULES_PATH, REPORTED_AGENT_VERSION
    try:
        flags = {"modules_path": modules_path}
        settings, _ = load_config(found, flags, env)
    except ConfigError as e:
        if modules_path is not None:  # the path was given: the rest of the config is not needed
            return modules_path, REPORTED_AGENT_VERSION
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    return settings.modules_path, settings.agent_version


@modules.command("list")
@_path_options
def list_command(config_file: Path | None, modules_path: Path | None) -> None:
    """List the installed modules, and those the agent would refuse (with why)."""
    path, agent_version = _settings_for(config_file, modules_path)
    catalog = scan(path, agent_version)
    if not catalog.modules and not catalog.errors:
        click.echo(f"no modules in {path} (install one: istari-agent modules install SOURCE)")
        return
    for m in catalog.modules:
        functions = ", ".join(sorted(m.manifest.functions))
        click.echo(f"{m.key} {m.version}  {m.directory.name}/  {functions}")
    for e in catalog.errors:
        click.echo(f"refused: {e}", err=True)
    if catalog.errors:
        sys.exit(1)


@modules.command("lint")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--host-os", default=None, help='Also check a variant runs here, e.g. "RHEL 9".')
@_path_options
def lint_command(
    path: Path, host_os: str | None, config_file: Path | None, modules_path: Path | None
) -> None:
    """Every problem of the module at PATH (its directory or manifest) in one pass, each with
    its file, field and fix; exit 1 when any is an error (warnings alone exit 0)."""
    directory = path.parent if path.is_file() else path
    _, agent_version = _settings_for(config_file, modules_path)
    problems = lint(directory, agent_version, host_os)
    for p in problems:
        mark = click.style("error", fg="red") if p.severity == "error" else "warning"
        click.echo(f"{mark}: {p.path}: {p.field}: {p.problem}\n  fix: {p.fix}")
    errors = len(errors_only(problems))
    warnings = len(problems) - errors
    verdict = "ok" if not errors else "refused"
    click.echo(f"{directory}: {verdict} ({errors} error(s), {warnings} warning(s))")
    sys.exit(1 if errors else 0)


@modules.command("checksum")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
def checksum_command(path: Path) -> None:
    """Print the module_checksum of the module directory PATH (docs/modules.md says how it is
    made): write it into the manifest, and the agent refuses the module if its files change."""
    click.echo(module_checksum(path))


@modules.command("install")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@_path_options
def install_command(source: Path, config_file: Path | None, modules_path: Path | None) -> None:
    """Install the module at SOURCE: a directory, a .zip or a tar archive (.tar, .tar.gz)."""
    path, agent_version = _settings_for(config_file, modules_path)
    try:
        done = install(source, path, agent_version)
    except (InstallError, ManifestError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: cannot install into {path}: {e.strerror or e}", err=True)
        sys.exit(1)
    m = done.module
    was = f" (was {done.replaced})" if done.replaced else ""
    click.echo(f"installed {m.key} {m.version}{was} in {done.directory}")
    click.echo("a running agent serves it now (it watches the modules path)")


@modules.command("remove")
@click.argument("key")
@_path_options
def remove_command(key: str, config_file: Path | None, modules_path: Path | None) -> None:
    """Remove the installed module KEY (e.g. @example:stl_summary)."""
    path, _ = _settings_for(config_file, modules_path)
    try:
        directory = remove(key, path)
    except InstallError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: cannot remove {key}: {e.strerror or e}", err=True)
        sys.exit(1)
    click.echo(f"removed {key} ({directory}); jobs already running on it finish")


@modules.command("publish")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@registry_options
def publish_command(path: Path, registry_url: str, token_file: Path | None) -> None:
    """Publish the module at PATH (its directory, or its module_manifest.json)."""
    directory = path.parent if path.is_file() else path
    if path.is_file() and path.name != MANIFEST_FILE:
        msg = f"give a module directory or its {MANIFEST_FILE}"
        raise click.BadParameter(msg, param_hint="PATH")
    try:
        module = load_module(directory)
    except ManifestError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    token = client_token(token_file)
    try:
        answer = asyncio.run(_publish(registry_url, token, module))
    except RegistryError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    shown = f" (module id {answer['id']})" if answer.get("id") else ""
    click.echo(f"published {module.key} {module.version} to {registry_url}{shown}")


async def _publish(url: str, token: str, module: InstalledModule) -> dict[str, Any]:
    async with RegistryClient(url, token) as client:
        return await client.publish_module(module.raw)
