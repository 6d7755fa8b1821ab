"""The blob index: `blobs` (verified, with their salt) and `blob_candidates` (uploads waiting
to be checked). The bytes themselves are files under the data directory (blobs.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from agent.localregistry.store import base


def verified(conn: sqlite3.Connection, sha: str) -> sqlite3.Row | None:
    """The verified blob's `size` and `salt`, if one is stored under `sha`."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT size, salt FROM blobs WHERE sha = ?", (sha,)
    ).fetchone()


def uploaded(conn: sqlite3.Connection, sha: str) -> bool:
    """Whether anything was uploaded to `sha`: a verified blob or a candidate."""
    found = conn.execute(
        "SELECT 1 FROM blobs WHERE sha = ? UNION ALL "
        "SELECT 1 FROM blob_candidates WHERE sha = ? LIMIT 1",
        (sha, sha),
    ).fetchone()
    return found is not None


def unchecked(conn: sqlite3.Connection) -> list[str]:
    """The shas of blobs an older release stored without checking them (no salt)."""
    return [r["sha"] for r in conn.execute("SELECT sha FROM blobs WHERE salt IS NULL")]


def forget(conn: sqlite3.Connection, sha: str) -> None:
    """Drop the `blobs` row of `sha`."""
    conn.execute("DELETE FROM blobs WHERE sha = ?", (sha,))


def add_candidate(
    conn: sqlite3.Connection,
    candidate_id: str,
    sha: str,
    size: int,
    digest: str | None,
    created: str,
) -> None:
    """A candidate for `sha` (`digest`: of its bytes alone, when known)."""
    candidate = {"id": candidate_id, "sha": sha, "size": size, "digest": digest}
    base.insert(conn, "blob_candidates", {**candidate, "created": created})


def has_candidate(conn: sqlite3.Connection, sha: str, digest: str) -> bool:
    """Whether the same bytes are already a candidate for `sha`."""
    found = conn.execute(
        "SELECT 1 FROM blob_candidates WHERE sha = ? AND digest = ?", (sha, digest)
    ).fetchone()
    return found is not None


def waiting(conn: sqlite3.Connection, sha: str) -> int:
    """How many candidates wait for `sha`."""
    found = conn.execute("SELECT COUNT(*) FROM blob_candidates WHERE sha = ?", (sha,))
    return int(found.fetchone()[0])


def candidates(conn: sqlite3.Connection, sha: str) -> list[sqlite3.Row]:
    """The candidates for `sha` (`id`, `size`), oldest first."""
    return conn.execute(
        "SELECT id, size FROM blob_candidates WHERE sha = ? ORDER BY created", (sha,)
    ).fetchall()


def candidate_ids(conn: sqlite3.Connection) -> set[str]:
    """Every candidate's id."""
    return {r["id"] for r in conn.execute("SELECT id FROM blob_candidates")}


def drop_candidates_before(conn: sqlite3.Connection, cutoff: str) -> None:
    """Drop the candidates filed before `cutoff` (an ISO-8601 time)."""
    conn.execute("DELETE FROM blob_candidates WHERE created < ?", (cutoff,))


def drop_candidates(conn: sqlite3.Connection, ids: Iterable[str]) -> None:
    """Drop these candidates."""
    conn.executemany("DELETE FROM blob_candidates WHERE id = ?", [(i,) for i in ids])


def promote(conn: sqlite3.Connection, sha: str, size: int, salt: str, created: str) -> list[str]:
    """Record the verified blob at `sha` and drop every candidate for it; their ids."""
    base.insert(conn, "blobs", {"sha": sha, "size": size, "created": created, "salt": salt})
    rows = conn.execute("SELECT id FROM blob_candidates WHERE sha = ?", (sha,)).fetchall()
    conn.execute("DELETE FROM blob_candidates WHERE sha = ?", (sha,))
    return [r["id"] for r in rows]
