"""Files and their revisions: the `files` and `revisions` tables.

A revision is stored as the document `files.build_revision` made of it; a file answers with
all of its revisions in order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.localregistry.errors import NotFound
from agent.localregistry.store import base
from agent.localregistry.store.base import id_list
from agent.localregistry.wire import dumps, loads


@dataclass(frozen=True)
class File:
    """A file's row and its revisions' documents, oldest first."""

    row: sqlite3.Row
    revisions: list[dict[str, Any]]


def insert(
    conn: sqlite3.Connection, doc: dict[str, Any], by: str, resource: tuple[str, str] | None
) -> str:
    """Store a new file whose first revision is `doc`; returns the file's id."""
    file_id: str = doc["file_id"]
    rid, rtype = resource if resource else (None, None)
    file = {"id": file_id, "created": doc["created"], "resource_id": rid}
    base.insert(conn, "files", {**file, "resource_type": rtype, "created_by_id": by})
    base.insert(
        conn, "revisions", {"id": doc["id"], "file_id": file_id, "seq": 0, "doc": dumps(doc)}
    )
    return file_id


def add_revision(conn: sqlite3.Connection, file_id: str, doc: dict[str, Any]) -> None:
    """Append a revision to an existing file."""
    row = conn.execute(
        "SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM revisions WHERE file_id = ?", (file_id,)
    ).fetchone()
    revision = {"id": doc["id"], "file_id": file_id, "seq": row["next"], "doc": dumps(doc)}
    base.insert(conn, "revisions", revision)


def read_many(conn: sqlite3.Connection, file_ids: Iterable[str]) -> dict[str, File]:
    """The files with these ids (those that exist), in one query."""
    rows = conn.execute(
        "SELECT f.*, r.doc AS revision FROM files f LEFT JOIN revisions r ON r.file_id = f.id "
        "WHERE f.id IN (SELECT value FROM json_each(?)) ORDER BY f.id, r.seq",
        (id_list(set(file_ids)),),
    ).fetchall()
    found: dict[str, File] = {}
    for row in rows:
        file = found.setdefault(row["id"], File(row, []))
        if row["revision"] is not None:
            file.revisions.append(loads(row["revision"]))
    return found


def read(conn: sqlite3.Connection, file_id: str) -> File:
    """The file, or 404."""
    found = read_many(conn, [file_id]).get(file_id)
    if found is None:
        msg = f"no file with id {file_id}"
        raise NotFound(msg)
    return found
