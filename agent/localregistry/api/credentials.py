"""Stored credentials (a local-registry extension): store one, revoke one; never read back.

`POST /api/v2/stored_credentials {name, function_auth_type, secret, expiration?}` answers the
credential without its secret; jobs bind it by id (`auth_bindings`), and only the agent that
claims such a job receives it, sealed to its key (credentials.py).
"""

from __future__ import annotations

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound
from agent.localregistry.http import body, path_id, reply
from agent.localregistry.inbound import StoredCredentialIn
from agent.localregistry.state import principal, registry
from agent.localregistry.store import credentials as stored
from agent.localregistry.wire import new_id, now

routes = web.RouteTableDef()


@routes.post("/api/v2/stored_credentials")
async def store_credential(request: web.Request) -> web.Response:
    reg = registry(request)
    new = await body(request, StoredCredentialIn)
    doc = {
        "id": new_id(),
        "created": now(),
        "created_by_id": principal(request).id,
        "name": new.name,
        "function_auth_type": new.function_auth_type,
        "expiration": new.expiration.isoformat() if new.expiration else None,
    }
    with transaction(reg.conn) as c:
        stored.insert(c, doc, new.secret.get_secret_value().encode())
    return reply(doc)


@routes.delete("/api/v2/stored_credentials/{credential_id}")
async def revoke_credential(request: web.Request) -> web.Response:
    reg = registry(request)
    credential_id = path_id(request, "credential_id")
    with transaction(reg.conn) as c:
        if not stored.revoke(c, credential_id):
            msg = f"no stored credential {credential_id}"
            raise NotFound(msg)
    return reply({"id": credential_id, "revoked": True})
