"""The multipart index: `multipart_uploads` (uploads in progress) and `multipart_parts` (the
parts each has acknowledged). The bytes are one file per upload (multipart.py)."""

from __future__ import annotations

import sqlite3

from agent.localregistry.store import base


def add_upload(
    conn: sqlite3.Connection, upload_id: str, sha: str, num_parts: int, created: str
) -> None:
    """A new multipart upload of `num_parts` parts to `sha`."""
    row = {"id": upload_id, "sha": sha, "num_parts": num_parts, "part_size": None}
    base.insert(conn, "multipart_uploads", {**row, "created": created, "touched": created})


def upload(conn: sqlite3.Connection, upload_id: str) -> sqlite3.Row | None:
    """The upload's row (`sha`, `num_parts`, `part_size`), if it is in progress."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT * FROM multipart_uploads WHERE id = ?", (upload_id,)
    ).fetchone()


def open_for(conn: sqlite3.Connection, sha: str) -> int:
    """How many multipart uploads to `sha` are in progress."""
    found = conn.execute("SELECT COUNT(*) FROM multipart_uploads WHERE sha = ?", (sha,))
    return int(found.fetchone()[0])


def set_part_size(conn: sqlite3.Connection, upload_id: str, part_size: int) -> None:
    """Record the size every part but the last has (learnt from the first to arrive)."""
    conn.execute(
        "UPDATE multipart_uploads SET part_size = ? WHERE id = ? AND part_size IS NULL",
        (part_size, upload_id),
    )


def add_part(
    conn: sqlite3.Connection, upload_id: str, number: int, size: int, etag: str, when: str
) -> None:
    """Part `number` arrived (replacing an earlier copy of it)."""
    conn.execute(
        "INSERT OR REPLACE INTO multipart_parts VALUES (?, ?, ?, ?)",
        (upload_id, number, size, etag),
    )
    conn.execute("UPDATE multipart_uploads SET touched = ? WHERE id = ?", (when, upload_id))


def drop_part(conn: sqlite3.Connection, upload_id: str, number: int) -> None:
    """Forget part `number` (about to be replaced)."""
    conn.execute(
        "DELETE FROM multipart_parts WHERE upload_id = ? AND part_number = ?", (upload_id, number)
    )


def parts(conn: sqlite3.Connection, upload_id: str) -> dict[int, sqlite3.Row]:
    """The upload's acknowledged parts by number (`size`, `etag`)."""
    rows = conn.execute(
        "SELECT part_number, size, etag FROM multipart_parts WHERE upload_id = ?", (upload_id,)
    )
    return {int(r["part_number"]): r for r in rows}


def drop_upload(conn: sqlite3.Connection, upload_id: str) -> None:
    """Forget the upload and its parts."""
    conn.execute("DELETE FROM multipart_uploads WHERE id = ?", (upload_id,))


def idle_since(conn: sqlite3.Connection, cutoff: str) -> list[str]:
    """The uploads no part reached since `cutoff` (an ISO-8601 time)."""
    rows = conn.execute("SELECT id FROM multipart_uploads WHERE touched < ?", (cutoff,))
    return [r["id"] for r in rows]


def upload_ids(conn: sqlite3.Connection) -> set[str]:
    """Every upload in progress."""
    return {r["id"] for r in conn.execute("SELECT id FROM multipart_uploads")}
