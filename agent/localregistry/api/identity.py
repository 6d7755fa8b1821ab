"""Identity-service mode: the token endpoint (v2 and v1 paths, at the root and under
`/identity`, the prefix the platform's gateway uses) and `POST /api/v2/key/agent`.

The token endpoint answers without a bearer token (the client assertion is the credential).
Registering a key needs one: the admin token or a PAT, not an agent signed in with a key, so a
leaked key cannot mint identities that outlive it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict

from agent.localregistry.errors import Forbidden, validation_error
from agent.localregistry.http import body, reply
from agent.localregistry.identity import AGENT_KEY_KIND, OAuthError
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import TENANT_ID, now
from agent.protocol import identity as rules

routes = web.RouteTableDef()

IDENTITY_PREFIX = "/identity"
TOKEN_PATHS = tuple(
    prefix + path
    for prefix in ("", IDENTITY_PREFIX)
    for path in (rules.TOKEN_PATH_V2, rules.TOKEN_PATH_V1)
)
MAX_KEY_LIFETIME = timedelta(days=366)  # the platform's rule: at most a year out


class NewAgentKey(BaseModel):
    """The SDK's `NewAgentKey`."""

    model_config = ConfigDict(extra="ignore")

    public_key_pem: str
    key_id: str
    display_name: str | None = ""
    key_name: str | None = ""
    expires_at: AwareDatetime | None = None


async def token(request: web.Request) -> web.Response:
    """`POST .../oauth2/token`: a client assertion for an access token (form-encoded)."""
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        answer = registry(request).identity.exchange(fields, request.path)
    except OAuthError as e:
        payload = {"error": e.error, "error_description": e.description}
        response = reply(payload, status=e.status)
        if e.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
    response = reply(answer)
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return response


for _path in TOKEN_PATHS:
    routes.post(_path)(token)


@routes.post("/api/v2/key/agent")
async def register_agent_key(request: web.Request) -> web.Response:
    """Register an agent's ES384 public key under a new client id (`AgentCredential`)."""
    who = principal(request)
    if who.kind == AGENT_KEY_KIND:
        msg = "an agent signed in with a key cannot register keys; use a user's or admin token"
        raise Forbidden(msg)
    new = await body(request, NewAgentKey)
    try:
        rules.load_public_key(new.public_key_pem)
    except rules.BadCredentials as e:
        raise validation_error(["body", "public_key_pem"], str(e)) from None
    if not new.key_id.strip():
        raise validation_error(["body", "key_id"], "must not be blank")
    current = datetime.now(UTC)
    expires = new.expires_at or current + timedelta(days=365)
    if not current < expires <= current + MAX_KEY_LIFETIME:
        msg = "must be in the future and at most one year out"
        raise validation_error(["body", "expires_at"], msg)
    key_name = (new.key_name or "").strip() or new.key_id
    key = {
        "key_id": new.key_id,
        "public_key_pem": new.public_key_pem,
        "key_name": key_name,
        "display_name": new.display_name or "",
        "expires": int(expires.timestamp()),
    }
    made = registry(request).identity.register(key, who, now())
    return reply({**made, "tenant_id": TENANT_ID, "key_name": key_name})
