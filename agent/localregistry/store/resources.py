"""Models and artifacts: the `resources` table (each owns one file, `store/files.py`).

A model is read with its artifacts (the legacy client requires the list), and each of them
with its file: four queries for one model or for a page of them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from agent.localregistry.errors import NotFound
from agent.localregistry.store import base, files
from agent.localregistry.store.base import Where, grouped, id_list, page


@dataclass(frozen=True)
class Resource:
    """A model's or artifact's row and file; a model's artifacts, oldest first."""

    row: sqlite3.Row
    file: files.File
    artifacts: list[Resource] = field(default_factory=list)


def row(conn: sqlite3.Connection, rid: str, kind: str | None = None) -> sqlite3.Row:
    """A model or artifact row (of `kind` when given), or 404."""
    found = conn.execute("SELECT * FROM resources WHERE id = ?", (rid,)).fetchone()
    if found is None or (kind is not None and found["kind"] != kind):
        msg = f"no {kind or 'model or artifact'} with id {rid}"
        raise NotFound(msg)
    return found  # type: ignore[no-any-return]


def read_many(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Resource]:
    """The resources of `rows`, with their files (and the models' artifacts)."""
    models = [r["id"] for r in rows if r["kind"] == "model"]
    artifacts = (
        conn.execute(
            "SELECT * FROM resources WHERE kind = 'artifact' "
            "AND parent_id IN (SELECT value FROM json_each(?)) ORDER BY created",
            (id_list(models),),
        ).fetchall()
        if models
        else []
    )
    found = files.read_many(conn, (r["file_id"] for r in [*rows, *artifacts]))
    children = grouped(artifacts, "parent_id")
    return [
        Resource(
            r,
            found[r["file_id"]],
            [Resource(a, found[a["file_id"]]) for a in children.get(r["id"], [])],
        )
        for r in rows
    ]


def read(conn: sqlite3.Connection, rid: str, kind: str | None = None) -> Resource:
    """The model or artifact (of `kind` when given), or 404."""
    return read_many(conn, [row(conn, rid, kind)])[0]


def listing(
    conn: sqlite3.Connection,
    kind: str,
    parent_id: str | None,
    page_no: int,
    size: int,
    source_job_id: str | None = None,
) -> tuple[int, list[Resource]]:
    """One page of unarchived models or artifacts (of `parent_id`), oldest first; with
    `source_job_id`, only those that job uploaded a revision of (created, or revised)."""
    where = Where("kind = ?", "archived = 0", args=[kind])
    where.add_if("parent_id = ?", parent_id)
    where.add_if(
        "EXISTS (SELECT 1 FROM revisions v WHERE v.source_job_id = ? "
        "AND v.file_id = resources.file_id)",
        source_job_id,
    )
    total, rows = page(conn, "resources", where, "created", page_no, size)
    return total, read_many(conn, rows)


def insert(
    conn: sqlite3.Connection,
    rid: str,
    kind: str,
    file_id: str,
    parent_id: str | None,
    job_id: str | None,
    by: str,
    created: str,
) -> None:
    """A new model or artifact owning the file `file_id`."""
    resource = {"id": rid, "kind": kind, "created": created, "file_id": file_id}
    base.insert(
        conn,
        "resources",
        {**resource, "parent_id": parent_id, "source_job_id": job_id, "created_by_id": by},
    )
