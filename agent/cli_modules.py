"""`istari-agent modules publish PATH`: publish a module the way people do on the platform.

On a hosted registry modules are published by people with the platform's CLI (`stari client
publish`); an agent only reports what it has installed (`publish_modules` is off by default).
This is our stand-in for that CLI, with the registry and token of `istari-agent submit`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from agent.cli import client_token, registry_options
from agent.modules.catalog import MANIFEST_FILE, InstalledModule, load_module
from agent.protocol.manifest import ManifestError
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError


@click.group()
def modules() -> None:
    """Modules: publish one to the registry (as `stari client publish` does)."""


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
