"""`istari-agent registry ...`: serve the embedded registry (the CLI reads its environment)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import click

from agent.localregistry.app import GiB, RegistrySettings
from agent.localregistry.server import serve_forever
from agent.push.broker import Broker, BrokerURLError


@click.group()
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
@click.option(
    "--mqtt-url",
    default=None,
    help="Publish push notices to this broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] "
    "[credentials: env ISTARI_LOCAL_REGISTRY_MQTT_USERNAME, ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD].",
)
@click.option(
    "--mqtt-ca-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CA bundle to verify an mqtts:// broker with (default: the system's CAs).",
)
def registry_serve(
    host: str,
    port: int,
    data_dir: Path,
    max_blob_size: int,
    public_url: str | None,
    mqtt_url: str | None,
    mqtt_ca_file: Path | None,
) -> None:
    """Serve the local registry (token: $ISTARI_LOCAL_REGISTRY_TOKEN or DIR/admin-token)."""
    settings = RegistrySettings(
        data_dir=data_dir,
        admin_token=os.environ.get("ISTARI_LOCAL_REGISTRY_TOKEN") or None,
        max_blob_size=max_blob_size,
        public_url=public_url,
        mqtt=_registry_broker(mqtt_url, mqtt_ca_file),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(settings, host, port))


def _registry_broker(url: str | None, ca_file: Path | None) -> Broker | None:
    """The registry's MQTT broker from `--mqtt-url` and the environment; None without a URL."""
    if url is None:
        return None
    try:
        return Broker.from_url(
            url,
            username=os.environ.get("ISTARI_LOCAL_REGISTRY_MQTT_USERNAME") or None,
            password=os.environ.get("ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD") or None,
            ca_file=ca_file,
        )
    except BrokerURLError as e:
        raise click.UsageError(str(e)) from None
