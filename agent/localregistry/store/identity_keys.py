"""Identity-service keys: the `identity_keys` table (agents' ES384 public keys, migration 0003)."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.localregistry.store import base


def insert(conn: sqlite3.Connection, key: dict[str, Any]) -> None:
    """A newly registered key (its client id is new too)."""
    base.insert(conn, "identity_keys", key)


def find(conn: sqlite3.Connection, client_id: str, key_id: str) -> sqlite3.Row | None:
    """The key `key_id` of client `client_id`, expired or not."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM identity_keys WHERE client_id = ? AND key_id = ?", (client_id, key_id)
    ).fetchone()
    return row


def set_expires(conn: sqlite3.Connection, client_id: str, key_id: str, expires: int) -> bool:
    """Move a key's expiry (to the past, to retire it at once); whether the key exists."""
    changed = conn.execute(
        "UPDATE identity_keys SET expires = ? WHERE client_id = ? AND key_id = ?",
        (expires, client_id, key_id),
    ).rowcount
    return bool(changed == 1)
