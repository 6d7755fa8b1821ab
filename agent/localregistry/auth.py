"""Bearer tokens of the local registry: stored hashed, compared in constant time, revocable.

Tokens are 256-bit random strings, so one round of SHA-256 is enough to store them safely (no
password stretching is needed for high-entropy secrets). Every stored hash is compared with
`hmac.compare_digest`, so timing says nothing about which byte differed.

The valid set is cached in memory and reloaded whenever another connection changed the
database (`PRAGMA data_version`, one cheap read per request): `istari-agent registry token
revoke` works on the database directly, and a running registry refuses the token at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import uuid
from dataclasses import dataclass

from agent.localregistry.db import transaction
from agent.localregistry.store import tokens as table
from agent.localregistry.wire import now


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's id, name and kind."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its secret or its hash."""

    id: str
    name: str
    kind: str
    created: str


ADMIN = "admin"


class TokenStore:
    """The set of valid tokens, cached in memory and backed by the database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cache: list[tuple[str, Principal]] = []
        self._seen = -1
        self._reload()

    def _reload(self) -> None:
        # The version first: a change committed after it is seen at the next request.
        self._seen = table.data_version(self._conn)
        rows = table.hashes(self._conn)
        self._cache = [(r["hash"], Principal(r["id"], r["name"], r["kind"])) for r in rows]

    def _refresh(self) -> None:
        """Reload if another connection committed since (our own commits reload directly)."""
        if table.data_version(self._conn) != self._seen:
            self._reload()

    def list(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        rows = table.listing(self._conn)
        return [TokenInfo(r["id"], r["name"], r["kind"], r["created"]) for r in rows]

    def revoke(self, token_id: str) -> bool:
        """Delete a token other than the admin token; whether one was deleted."""
        with transaction(self._conn) as c:
            deleted = table.delete(c, token_id, keep_kind=ADMIN)
        self._reload()
        return deleted

    def revoke_all(self) -> int:
        """Delete every token but the admin token; how many."""
        with transaction(self._conn) as c:
            deleted = table.delete_all_but(c, ADMIN)
        self._reload()
        return deleted

    def ensure_admin(self, token: str) -> bool:
        """Make `token` the admin token (replacing an earlier one); False, changing nothing,
        when it is the secret of another token (a PAT must not become the admin token)."""
        with transaction(self._conn) as c:
            if table.hash_taken(c, token_hash(token), except_kind=ADMIN):
                return False
            table.delete_kind(c, ADMIN)
            table.insert(c, str(uuid.uuid4()), ADMIN, ADMIN, token_hash(token), now())
        self._reload()
        return True

    def create(self, name: str, kind: str) -> tuple[str, Principal, str]:
        """A new token: (secret shown once, principal, creation time)."""
        secret = secrets.token_urlsafe(32)
        principal = Principal(str(uuid.uuid4()), name, kind)
        created = now()
        with transaction(self._conn) as c:
            table.insert(c, principal.id, name, kind, token_hash(secret), created)
        self._reload()
        return secret, principal, created

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal for an `Authorization: Bearer ...` header (the scheme in any case,
        RFC 7235), or None."""
        scheme, _, credentials = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        self._refresh()
        presented = token_hash(credentials.strip())
        found: Principal | None = None
        for stored, principal in self._cache:
            # Compare against every token, so the time taken does not depend on the match.
            if hmac.compare_digest(stored, presented):
                found = principal
        return found
