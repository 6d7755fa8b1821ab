"""Identity-service mode of the local registry: agent keys, the client-credentials exchange,
and the short-lived access tokens it issues.

A key is registered with `POST /api/v2/key/agent` (api/identity.py), which makes a new agent
principal (client id) for it. At the token endpoint an RFC 7523 client assertion signed by the
key's private half (protocol/identity.py checks it) earns an access token: an HS256 JWT
signed with a key derived from the data directory's signing key, valid `ttl` seconds. The
auth middleware takes it beside PATs; it stops working when it expires or its key does.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from agent.localregistry.auth import Principal
from agent.localregistry.db import transaction
from agent.localregistry.store import identity_keys as table
from agent.protocol import identity as rules

ISSUER = "istari-local-registry"
AGENT_KEY_KIND = "agent-key"  # the principal kind of a request made with an access token
_HS = "HS256"


@dataclass(frozen=True)
class OAuthError(Exception):
    """A refused token request, answered `{error, error_description}` (RFC 6749 §5.2)."""

    status: int
    error: str
    description: str


def revoke_key(conn: sqlite3.Connection, client_id: str, key_id: str, now: float) -> bool:
    """Retire a registered key at once (its expiry moved to `now`): no new access token, and
    those issued stop working at their next use. Whether the key exists."""
    with transaction(conn) as c:
        return table.set_expires(c, client_id, key_id, int(now))


class AccessTokens:
    """Issues access tokens for valid client assertions, and recognises them afterwards."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        signing_key: bytes,
        ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn = conn
        # Its own key: an access token can never pass for a presigned URL's signature.
        self._secret = hmac.new(signing_key, b"identity access tokens", hashlib.sha256).digest()
        self.ttl = ttl
        self._clock = clock
        self._seen: dict[str, float] = {}  # assertion jti -> its expiry: each is used once
        self.issued = 0  # access tokens issued since start (tests watch renewals with it)

    def exchange(self, form: dict[str, str], endpoint_path: str) -> dict[str, Any]:
        """The token answer for a client-credentials request at `endpoint_path`."""
        if form.get("grant_type") != rules.GRANT_TYPE:
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != rules.ASSERTION_TYPE:
            msg = f"client_assertion_type must be {rules.ASSERTION_TYPE}"
            raise OAuthError(400, "invalid_request", msg)
        assertion = form.get("client_assertion") or ""
        now = self._clock()
        try:
            client_id, key_id = rules.assertion_subject(assertion)
            row = table.find(self._conn, client_id, key_id)
            if row is None:
                msg = f"no key {key_id} is registered for client {client_id}"
                raise OAuthError(401, "invalid_client", msg)
            if row["expires"] <= now:
                msg = f"key {key_id} of client {client_id} has expired"
                raise OAuthError(401, "invalid_client", msg)
            key = rules.load_public_key(row["public_key_pem"])
            claims = rules.verify_assertion(assertion, key, client_id, endpoint_path, now)
        except (rules.BadAssertion, rules.BadCredentials) as e:
            raise OAuthError(401, "invalid_client", str(e)) from None
        self._first_use(str(claims["jti"]), float(claims["exp"]), now)
        lifetime = int(min(self.ttl, row["expires"] - now))
        token = self._issue(row, now, lifetime)
        self.issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}

    def _first_use(self, jti: str, expires: float, now: float) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v + rules.CLOCK_SKEW > now}
        if jti in self._seen:
            raise OAuthError(401, "invalid_client", "client_assertion was already used (jti)")
        self._seen[jti] = expires

    def _issue(self, row: sqlite3.Row, now: float, lifetime: int) -> str:
        claims = {
            "iss": ISSUER,
            "sub": row["client_id"],
            "kid": row["key_id"],
            "user_id": row["user_id"],
            "principal_kind": "agent",
            "iat": int(now),
            "exp": int(now) + lifetime,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._secret, algorithm=_HS)

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal of a bearer access token whose key is still valid, or None."""
        scheme, _, credentials = (header or "").strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_HS],
                issuer=ISSUER,
                options={"require": ["sub", "kid", "user_id", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        row = table.find(self._conn, str(claims["sub"]), str(claims["kid"]))
        if row is None or row["expires"] <= self._clock():
            return None  # the key expired or went since: so do its tokens
        return Principal(row["user_id"], row["display_name"] or row["client_id"], AGENT_KEY_KIND)

    def register(self, key: dict[str, Any], created_by: Principal, created: str) -> dict[str, Any]:
        """Store a new agent key under a new client id; the `AgentCredential` answer."""
        user_id = str(uuid.uuid4())
        client_id = f"agent-{uuid.uuid4().hex}"
        row = {
            "client_id": client_id,
            "key_id": key["key_id"],
            "user_id": user_id,
            "public_key_pem": key["public_key_pem"],
            "key_name": key["key_name"],
            "display_name": key["display_name"],
            "expires": key["expires"],
            "created": created,
            "created_by_id": created_by.id,
        }
        with transaction(self._conn) as c:
            table.insert(c, row)
        return {"client_id": client_id, "user_uuid": user_id, "key_id": key["key_id"]}
