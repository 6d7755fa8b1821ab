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
    conn: sqlite3.Connection,
    doc: dict[str, Any],
    by: str,
    resource: tuple[str, str] | None,
    job_id: str | None = None,
) -> str:
    """Store a new file whose first revision is `doc` (uploaded by job `job_id`, if any);
    returns the file's id."""
    file_id: str = doc["file_id"]
    rid, rtype = resource if resource else (None, None)
    file = {"id": file_id, "created": doc["created"], "resource_id": rid}
    base.insert(conn, "files", {**file, "resource_type": rtype, "created_by_id": by})
    revision = {"id": doc["id"], "file_id": file_id, "seq": 0, "doc": dumps(doc)}
    base.insert(conn, "revisions", {**revision, "source_job_id": job_id})
    return file_id


def add_revision(
    conn: sqlite3.Connection, file_id: str, doc: dict[str, Any], job_id: str | None = None
) -> bool:
    """Append a revision to an existing file (uploaded by job `job_id`, if any); False, and
    nothing added, when it names the same blobs as the file's current revision.

    A PUT is idempotent: the same revision sent twice (a client resends a PUT whose answer
    was lost: aiohttp once on a dropped connection, the SDK's urllib3 on a read error) must
    not make two. Each upload hashes under its own salt, so equal shas are that resend, or
    (with the legacy client's reused salt) the very content the file holds already.
    """
    row = conn.execute(
        "SELECT seq, doc FROM revisions WHERE file_id = ? ORDER BY seq DESC LIMIT 1", (file_id,)
    ).fetchone()
    if row is not None and _same_blobs(loads(row["doc"]), doc):
        return False
    seq = 0 if row is None else row["seq"] + 1
    revision = {"id": doc["id"], "file_id": file_id, "seq": seq, "doc": dumps(doc)}
    base.insert(conn, "revisions", {**revision, "source_job_id": job_id})
    return True


def _same_blobs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[t]["sha"] == b[t]["sha"] for t in ("content_token", "properties_token"))


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
