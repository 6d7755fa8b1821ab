"""Systems: `/api/v2/systems` (create, get, list), what workflow outputs and log entries hang on.

The local registry keeps only a system's name and description: it has no configurations,
branches or snapshots, so `configurations` is always empty.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web
from pydantic import Field

from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound
from agent.localregistry.http import Where, body, paging, path_id, query_str, reply
from agent.localregistry.inbound import Inbound
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import new_id, now, page

routes = web.RouteTableDef()


class NewSystemIn(Inbound):
    """`NewSystem`."""

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=4096)


def system_row(conn: sqlite3.Connection, system_id: str) -> sqlite3.Row:
    """The system's row, or 404."""
    row = conn.execute("SELECT * FROM systems WHERE id = ?", (system_id,)).fetchone()
    if row is None:
        msg = f"no system with id {system_id}"
        raise NotFound(msg)
    return row  # type: ignore[no-any-return]


def system_doc(row: sqlite3.Row) -> dict[str, Any]:
    """The wire `System`."""
    return {
        "id": row["id"],
        "created": row["created"],
        "created_by_id": row["created_by_id"],
        "name": row["name"],
        "description": row["description"],
        "archive_status": "Archived" if row["archived"] else "Active",
        "configurations": [],
        "baseline_tagged_snapshot_id": None,
    }


@routes.post("/api/v2/systems")
async def create_system(request: web.Request) -> web.Response:
    reg = registry(request)
    new = await body(request, NewSystemIn)
    system_id = new_id()
    with transaction(reg.conn) as c:
        c.execute(
            "INSERT INTO systems(id, created, created_by_id, name, description) "
            "VALUES (?, ?, ?, ?, ?)",
            (system_id, now(), principal(request).id, new.name, new.description),
        )
    # 200, not 201: the SDK's `create_system` parses the System only from a 200.
    return reply(system_doc(system_row(reg.conn, system_id)))


@routes.get("/api/v2/systems/{system_id}")
async def get_system(request: web.Request) -> web.Response:
    conn = registry(request).conn
    return reply(system_doc(system_row(conn, path_id(request, "system_id"))))


@routes.get("/api/v2/systems")
async def list_systems(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where = Where()
    where.archive_status(request)
    for column in ("name", "description"):
        value = query_str(request, column)
        if value is not None:
            where.add(f"instr(lower({column}), lower(?)) > 0", value)
    count = f"SELECT COUNT(*) FROM systems WHERE {where.sql}"  # noqa: S608
    total = conn.execute(count, where.args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM systems WHERE {where.sql} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*where.args, size, (page_no - 1) * size],
    ).fetchall()
    return reply(page([system_doc(r) for r in rows], total, page_no, size))
