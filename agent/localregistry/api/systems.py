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
from agent.localregistry.http import body, paging, path_id, query_archived, query_str, reply
from agent.localregistry.inbound import Inbound
from agent.localregistry.state import principal, registry
from agent.localregistry.store import systems
from agent.localregistry.wire import new_id, now, page

routes = web.RouteTableDef()


class NewSystemIn(Inbound):
    """`NewSystem`."""

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=4096)


def wire(row: sqlite3.Row) -> dict[str, Any]:
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
        systems.create(c, system_id, now(), principal(request).id, new.name, new.description)
    # 200, not 201: the SDK's `create_system` parses the System only from a 200.
    return reply(wire(systems.row(reg.conn, system_id)))


@routes.get("/api/v2/systems/{system_id}")
async def get_system(request: web.Request) -> web.Response:
    return reply(wire(systems.row(registry(request).conn, path_id(request, "system_id"))))


@routes.get("/api/v2/systems")
async def list_systems(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    archived = query_archived(request)
    name, description = query_str(request, "name"), query_str(request, "description")
    total, rows = systems.listing(
        registry(request).conn,
        archived=archived,
        name=name,
        description=description,
        page_no=page_no,
        size=size,
    )
    return reply(page([wire(r) for r in rows], total, page_no, size))
