"""The local registry's aiohttp application: middlewares (auth, errors, access log) and routes.

Only `/api/v2/health/*` answers without a token, and `/blobs/{sha}` takes a presigned
signature instead of one. Errors leave as `{"detail": ...}`; the access log carries method,
path and status, never a query string (presigned signatures live there) or a header. Every
answer carries the API compatibility headers (`agent/protocol/compat.py`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from aiohttp import web

from agent import __version__
from agent.localregistry.api import (
    agents,
    catalog,
    credentials,
    health,
    identity,
    jobs,
    models,
    multipart,
    pools,
    storage,
    systems,
    workflow_list,
    workflows,
)
from agent.localregistry.auth import TokenStore
from agent.localregistry.blobs import BlobStore
from agent.localregistry.datadir import MAKE_A_TOKEN, SetupRefused, check_admin_token, prepare
from agent.localregistry.db import connect
from agent.localregistry.errors import HTTPProblem, Unauthorized
from agent.localregistry.http import reply
from agent.localregistry.identity import AccessTokens
from agent.localregistry.multipart import MultipartUploads
from agent.localregistry.state import MAX_JSON_KEY, PRINCIPAL_KEY, REGISTRY_KEY, Registry
from agent.protocol import compat
from agent.push.broker import Broker
from agent.secretfiles import load_or_create_secret

log = structlog.get_logger("agent.localregistry")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OPEN_PREFIXES = ("/api/v2/health/", "/blobs/")
_OPEN_PATHS = frozenset(identity.TOKEN_PATHS)  # the client assertion is the credential
GiB = 1024**3


@dataclass(frozen=True)
class RegistrySettings:
    """How a local registry is set up."""

    data_dir: Path
    admin_token: str | None = None
    max_json_body: int = 16 * 1024 * 1024
    max_blob_size: int = 64 * GiB
    url_ttl: int = 900
    multipart_ttl: float = 86400.0  # seconds a multipart upload may sit idle before it is swept
    public_url: str | None = None
    mqtt: Broker | None = None  # where to publish push notices; None publishes nothing
    tls: ssl.SSLContext | None = None  # serve HTTPS with this (tls.server_context)
    access_token_ttl: int = 3600  # seconds an identity-service access token is valid
    identity_only: bool = False  # PAT creation answers 405, as the platform's with identity on


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn refusals into `{"detail": ...}` responses with their status code."""
    try:
        return await handler(request)
    except HTTPProblem as e:
        response = reply({"detail": e.detail}, status=e.status)
        response.headers.update(e.headers)
        return response
    except web.HTTPNotFound:
        return reply({"detail": f"no route for {request.method} {request.path}"}, status=404)
    except web.HTTPMethodNotAllowed:
        return reply({"detail": f"{request.method} is not allowed on {request.path}"}, status=405)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a valid bearer token (a PAT or an identity access token) everywhere but health,
    presigned blob URLs and the identity token endpoint."""
    if not (request.path.startswith(_OPEN_PREFIXES) or request.path in _OPEN_PATHS):
        reg, header = request.app[REGISTRY_KEY], request.headers.get("Authorization")
        who = reg.tokens.authenticate(header) or reg.identity.authenticate(header)
        if who is None:
            msg = "missing or invalid bearer token (Authorization: Bearer <token>)"
            raise Unauthorized(msg)
        request[PRINCIPAL_KEY] = who
    return await handler(request)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One debug line per request: method, path (no query), status, milliseconds."""
    start = time.perf_counter()
    response = await handler(request)
    log.debug(
        "registry.request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - start) * 1000, 2),
    )
    return response


def build_registry(settings: RegistrySettings) -> tuple[Registry, str]:
    """Open the data directory; returns the registry and its admin token.

    Raises SetupRefused (before touching the disk, for a short admin token) when the data
    directory is not safe to use or the admin token is too short.
    """
    data = settings.data_dir
    if settings.admin_token:
        check_admin_token(settings.admin_token, "ISTARI_LOCAL_REGISTRY_TOKEN")
    prepare(data)
    conn = connect(data / "registry.sqlite3")
    signing_key = load_or_create_secret(data / "signing-key")
    blobs = BlobStore(
        data / "blobs",
        conn,
        signing_key,
        url_ttl=settings.url_ttl,
        max_blob_size=settings.max_blob_size,
    )
    tokens = TokenStore(conn)
    admin = settings.admin_token
    if not admin:
        admin = load_or_create_secret(data / "admin-token").decode("ascii").strip()
        check_admin_token(admin, str(data / "admin-token"))
    # A rotated admin token replaces the old one; tokens minted meanwhile (PATs) stay valid
    # until revoked (`istari-agent registry token revoke`, docs/local-registry.md).
    if not tokens.ensure_admin(admin):
        msg = (
            "the admin token given is already the secret of another token of this registry; "
            f"choose a new one. Make one with: {MAKE_A_TOKEN}"
        )
        raise SetupRefused(msg)
    access = AccessTokens(conn, signing_key, settings.access_token_ttl)
    return Registry(
        conn=conn,
        blobs=blobs,
        multipart=MultipartUploads(blobs, conn, ttl=settings.multipart_ttl),
        tokens=tokens,
        identity=access,
        base_url=settings.public_url or "",
        identity_only=settings.identity_only,
    ), admin


def create_app(reg: Registry, settings: RegistrySettings) -> web.Application:
    """The aiohttp application serving `reg`."""
    app = web.Application(
        middlewares=[access_log_middleware, errors_middleware, auth_middleware],
        client_max_size=settings.max_json_body,
    )
    app[REGISTRY_KEY] = reg
    app[MAX_JSON_KEY] = settings.max_json_body
    modules = (
        health,
        storage,
        multipart,
        models,
        catalog,
        agents,
        pools,
        jobs,
        credentials,
        systems,
    )
    for module in (*modules, workflows, workflow_list, identity):
        app.router.add_routes(module.routes)

    async def close_db(app: web.Application) -> None:
        await app[REGISTRY_KEY].multipart.close()
        app[REGISTRY_KEY].conn.close()

    app.on_cleanup.append(close_db)
    app.on_response_prepare.append(compatibility_headers)
    return app


async def compatibility_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names the registry's version; one to a client that sent its API hashes
    (`X-Istari-Client-Api-Hashes`) carries the verdict on them, as the hosted registry's."""
    sent = request.headers.get(compat.CLIENT_HASHES)
    verdict = compat.judge(compat.decode(sent)) if sent is not None else compat.Verdict(None)
    response.headers.update(compat.answer(replace(verdict, server_version=__version__)))
