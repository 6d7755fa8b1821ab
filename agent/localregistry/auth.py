"""Bearer tokens of the local registry: stored hashed, compared in constant time.

Tokens are 256-bit random strings, so one round of SHA-256 is enough to store them safely (no
password stretching is needed for high-entropy secrets). Every stored hash is compared with
`hmac.compare_digest`, so timing says nothing about which byte differed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import uuid
from dataclasses import dataclass

from agent.localregistry.db import transaction
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


class TokenStore:
    """The set of valid tokens, cached in memory and backed by the database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._cache: list[tuple[str, Principal]] = []
        self._reload()

    def _reload(self) -> None:
        rows = self._conn.execute("SELECT id, name, kind, hash FROM tokens").fetchall()
        self._cache = [(r["hash"], Principal(r["id"], r["name"], r["kind"])) for r in rows]

    def ensure_admin(self, token: str) -> None:
        """Make `token` the admin token (replacing an earlier one)."""
        with transaction(self._conn) as c:
            c.execute("DELETE FROM tokens WHERE kind = 'admin'")
            c.execute(
                "INSERT INTO tokens(id, name, kind, hash, created) VALUES (?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), "admin", "admin", token_hash(token), now()),
            )
        self._reload()

    def create(self, name: str, kind: str) -> tuple[str, Principal, str]:
        """A new token: (secret shown once, principal, creation time)."""
        secret = secrets.token_urlsafe(32)
        principal = Principal(str(uuid.uuid4()), name, kind)
        created = now()
        with transaction(self._conn) as c:
            c.execute(
                "INSERT INTO tokens(id, name, kind, hash, created) VALUES (?, ?, ?, ?, ?)",
                (principal.id, name, kind, token_hash(secret), created),
            )
        self._reload()
        return secret, principal, created

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal for an `Authorization: Bearer ...` header, or None."""
        if not header or not header.startswith("Bearer "):
            return None
        presented = token_hash(header.removeprefix("Bearer ").strip())
        found: Principal | None = None
        for stored, principal in self._cache:
            # Compare against every token, so the time taken does not depend on the match.
            if hmac.compare_digest(stored, presented):
                found = principal
        return found
