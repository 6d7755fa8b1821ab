"""Bearer tokens: the `tokens` table (hashes only; auth.py keeps the valid set in memory)."""

from __future__ import annotations

import sqlite3

from agent.localregistry.store import base


def data_version(conn: sqlite3.Connection) -> int:
    """SQLite's counter of commits made by other connections (`PRAGMA data_version`)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def hashes(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every token's `id`, `name`, `kind` and `hash`."""
    return conn.execute("SELECT id, name, kind, hash FROM tokens").fetchall()


def listing(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every token's `id`, `name`, `kind` and `created`, oldest first (never its hash)."""
    return conn.execute(
        "SELECT id, name, kind, created FROM tokens ORDER BY created, id"
    ).fetchall()


def insert(
    conn: sqlite3.Connection, token_id: str, name: str, kind: str, hashed: str, created: str
) -> None:
    """A new token, stored as its hash."""
    token = {"id": token_id, "name": name, "kind": kind, "hash": hashed, "created": created}
    base.insert(conn, "tokens", token)


def delete(conn: sqlite3.Connection, token_id: str, keep_kind: str) -> bool:
    """Delete the token unless it is of `keep_kind`; whether one was deleted."""
    gone = conn.execute(
        "DELETE FROM tokens WHERE id = ? AND kind != ?", (token_id, keep_kind)
    ).rowcount
    return bool(gone == 1)


def delete_all_but(conn: sqlite3.Connection, keep_kind: str) -> int:
    """Delete every token not of `keep_kind`; how many."""
    return int(conn.execute("DELETE FROM tokens WHERE kind != ?", (keep_kind,)).rowcount)


def delete_kind(conn: sqlite3.Connection, kind: str) -> None:
    """Delete every token of `kind`."""
    conn.execute("DELETE FROM tokens WHERE kind = ?", (kind,))


def hash_taken(conn: sqlite3.Connection, hashed: str, except_kind: str) -> bool:
    """Whether a token not of `except_kind` has this hash."""
    found = conn.execute(
        "SELECT 1 FROM tokens WHERE hash = ? AND kind != ?", (hashed, except_kind)
    ).fetchone()
    return found is not None
