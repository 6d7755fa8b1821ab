"""Health (`/api/v2/health/...`, the only routes without a token) and token creation
(refused with 405 when the registry is identity-only)."""

from __future__ import annotations

from aiohttp import web

from agent.localregistry.db import reachable
from agent.localregistry.errors import MethodNotAllowed
from agent.localregistry.http import query_str, reply
from agent.localregistry.state import principal, registry

routes = web.RouteTableDef()


def _report(request: web.Request) -> dict[str, object]:
    reg = registry(request)
    db_ok = reachable(reg.conn)
    blobs_ok = reg.blobs.root.is_dir()
    return {
        "healthy": db_ok and blobs_ok,
        "checks": [
            {"name": "database", "passed": db_ok, "details": None},
            {"name": "blob_store", "passed": blobs_ok, "details": None},
        ],
    }


@routes.get("/api/v2/health/readiness")
async def readiness(request: web.Request) -> web.Response:
    report = _report(request)
    return reply(report, status=200 if report["healthy"] else 503)


@routes.get("/api/v2/health/liveness")
async def liveness(request: web.Request) -> web.Response:
    return reply({"healthy": True, "checks": []})


PATS_DEPRECATED = (
    "personal access token creation is disabled: this registry runs in identity-service mode "
    "(--identity-only); register an agent key instead (POST /api/v2/key/agent, or "
    "`istari-agent init REGISTRY_URL TOKEN_FILE --identity-key`)"
)


async def _create_pat(request: web.Request, kind: str) -> web.Response:
    """A new PAT; 405 where identity is on, as the platform answers (SDK `PATsDeprecatedError`).
    PATs made before still work."""
    reg = registry(request)
    if reg.identity_only:
        raise MethodNotAllowed(PATS_DEPRECATED)
    name = query_str(request, "name", required=True) or ""
    secret, p, created = reg.tokens.create(name, kind)
    return reply(
        {
            "id": p.id,
            "created": created,
            "machine_user_id": p.id,
            "token": secret,
            "token_id": p.id,
            "name": name,
            "user_type": kind,
            "created_by_id": principal(request).id,
        }
    )


@routes.post("/api/v2/pat/agent")
async def create_agent_pat(request: web.Request) -> web.Response:
    return await _create_pat(request, "agent")


@routes.post("/api/v2/pat")
async def create_human_pat(request: web.Request) -> web.Response:
    return await _create_pat(request, "human")
