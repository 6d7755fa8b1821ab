"""`istari-agent registry ...`: serve the embedded registry (the CLI reads its environment),
list or revoke its tokens, and revoke agents' identity keys."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import click

from agent.localregistry.app import GiB, RegistrySettings
from agent.localregistry.auth import ADMIN, TokenStore
from agent.localregistry.datadir import SetupRefused, check
from agent.localregistry.db import connect
from agent.localregistry.identity import revoke_key
from agent.localregistry.server import serve_forever
from agent.push.broker import Broker, BrokerURLError
from agent.secretfiles import InsecureSecretFile
from agent.tls import TLSError, server_context

_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.group()
def registry() -> None:
    """The embedded Istari-compatible registry."""


_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("istari-registry-data"),
    show_default=True,
    help="Where the database, blobs and admin token live.",
)


@registry.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, type=int, show_default=True)
@_data_dir
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
@click.option("--tls-cert-file", type=_FILE, default=None, help="Serve HTTPS with this cert.")
@click.option("--tls-key-file", type=_FILE, default=None, help="The key of --tls-cert-file.")
@click.option(
    "--tls-client-ca-file",
    type=_FILE,
    default=None,
    help="Require client certificates signed by this CA.",
)
@click.option(
    "--identity-only",
    is_flag=True,
    help="Identity-service mode as the platform runs it: PAT creation answers 405; agents "
    "register keys (POST /api/v2/key/agent). Existing tokens keep working.",
)
def registry_serve(
    host: str,
    port: int,
    data_dir: Path,
    max_blob_size: int,
    public_url: str | None,
    mqtt_url: str | None,
    mqtt_ca_file: Path | None,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
    tls_client_ca_file: Path | None,
    identity_only: bool,
) -> None:
    """Serve the local registry (token: $ISTARI_LOCAL_REGISTRY_TOKEN or DIR/admin-token)."""
    settings = RegistrySettings(
        data_dir=data_dir,
        admin_token=os.environ.get("ISTARI_LOCAL_REGISTRY_TOKEN") or None,
        max_blob_size=max_blob_size,
        public_url=public_url,
        mqtt=_registry_broker(mqtt_url, mqtt_ca_file),
        tls=_tls(tls_cert_file, tls_key_file, tls_client_ca_file),
        identity_only=identity_only,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever(settings, host, port))
    except (SetupRefused, InsecureSecretFile) as e:
        raise click.UsageError(str(e)) from None


@registry.group("token")
def token() -> None:
    """List and revoke the registry's tokens (a running registry sees a revocation at once)."""


@contextlib.contextmanager
def _database(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The database of an existing data directory (refused when it is not safe to use)."""
    try:
        check(data_dir)
    except SetupRefused as e:
        raise click.UsageError(str(e)) from None
    database = data_dir / "registry.sqlite3"
    if not database.exists():
        msg = f"{data_dir} holds no registry database; is --data-dir the one the registry uses?"
        raise click.UsageError(msg)
    try:
        conn = connect(database)
    except SetupRefused as e:  # written by a newer release, say
        raise click.UsageError(str(e)) from None
    with contextlib.closing(conn):
        yield conn


@contextlib.contextmanager
def _tokens(data_dir: Path) -> Iterator[TokenStore]:
    """The token store of an existing data directory."""
    with _database(data_dir) as conn:
        yield TokenStore(conn)


@token.command("list")
@_data_dir
def token_list(data_dir: Path) -> None:
    """Show each token's id, kind, creation time and name (never the secret)."""
    with _tokens(data_dir) as tokens:
        listed = tokens.list()
    click.echo(f"{'ID':<36}  {'KIND':<6}  {'CREATED':<32}  NAME")
    for t in listed:
        click.echo(f"{t.id:<36}  {t.kind:<6}  {t.created:<32}  {_printable(t.name)}")


@token.command("revoke")
@click.argument("token_id", required=False)
@click.option("--all", "every", is_flag=True, help="Revoke every token but the admin token.")
@_data_dir
def token_revoke(token_id: str | None, every: bool, data_dir: Path) -> None:
    """Revoke the token TOKEN_ID (see `token list`), or with --all every PAT."""
    if (token_id is None) == (not every):
        msg = "name one TOKEN_ID, or --all"
        raise click.UsageError(msg)
    with _tokens(data_dir) as tokens:
        if every:
            click.echo(f"revoked {tokens.revoke_all()} token(s); the admin token stays")
        else:
            _revoke_one(tokens, token_id or "", data_dir)


def _revoke_one(tokens: TokenStore, token_id: str, data_dir: Path) -> None:
    known = {t.id: t for t in tokens.list()}.get(token_id)
    if known is None:
        msg = f"no token with id {_printable(token_id)} (see `istari-agent registry token list`)"
        raise click.ClickException(msg)
    if known.kind == ADMIN:
        msg = (
            "the admin token is set when the registry starts: change ISTARI_LOCAL_REGISTRY_TOKEN "
            f"(or {data_dir / 'admin-token'}) and restart it"
        )
        raise click.ClickException(msg)
    tokens.revoke(known.id)
    click.echo(f"revoked token {known.id} ({_printable(known.name)})")


@registry.group("key")
def key() -> None:
    """Agents' identity-service keys (registered with POST /api/v2/key/agent)."""


@key.command("revoke")
@click.argument("client_id")
@click.argument("key_id")
@_data_dir
def key_revoke(client_id: str, key_id: str, data_dir: Path) -> None:
    """Revoke the key KEY_ID of client CLIENT_ID (the clientId and keyId of the agent's
    credential file): a running registry refuses it and its access tokens at once."""
    with _database(data_dir) as conn:
        if not revoke_key(conn, client_id, key_id, time.time()):
            msg = f"no key {_printable(key_id)} is registered for client {_printable(client_id)}"
            raise click.ClickException(msg)
    click.echo(f"revoked key {_printable(key_id)} of client {_printable(client_id)}")


def _printable(text: str) -> str:
    """`text` with control characters escaped, so a token's name cannot forge output lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    if cert is None:
        if key or client_ca:
            msg = "--tls-key-file and --tls-client-ca-file need --tls-cert-file"
            raise click.UsageError(msg)
        return None
    try:
        return server_context(cert, key or cert, client_ca)
    except TLSError as e:
        raise click.UsageError(str(e)) from None
