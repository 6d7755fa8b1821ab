"""Agent pools: `/api/v2/agent_pools...`. A job assigned to a pool goes to one member."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry.api.agents import agent_doc, agent_row
from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound
from agent.localregistry.http import Where, body, optional_body, paging, path_id, reply
from agent.localregistry.inbound import ArchiveIn, NewAgentPoolIn, PoolAgentIn
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import TENANT_ID, new_id, now, page
from agent.protocol.states import TERMINAL

routes = web.RouteTableDef()


def pool_row(conn: sqlite3.Connection, pool_id: str) -> sqlite3.Row:
    """The pool's row, or 404."""
    row = conn.execute("SELECT * FROM pools WHERE id = ?", (pool_id,)).fetchone()
    if row is None:
        msg = f"no agent pool with id {pool_id}"
        raise NotFound(msg)
    return row  # type: ignore[no-any-return]


def _membership(m: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": m["id"],
        "created": m["created"],
        "created_by_id": m["created_by_id"],
        "agent_id": m["agent_id"],
        "agent_pool_id": m["pool_id"],
        "archive_status": "Active",
    }


def pool_doc(conn: sqlite3.Connection, pool_id: str, *, with_count: bool = False) -> dict[str, Any]:
    """The wire `AgentPool` (with `unfinished_job_count` when asked)."""
    row = pool_row(conn, pool_id)
    members = conn.execute(
        "SELECT * FROM pool_members WHERE pool_id = ? ORDER BY created", (pool_id,)
    ).fetchall()
    doc: dict[str, Any] = {
        "id": row["id"],
        "created": row["created"],
        "created_by_id": row["created_by_id"],
        "name": row["name"],
        "description": row["description"],
        "tenant_id": TENANT_ID,
        "agent_memberships": [_membership(m) for m in members],
        "user_memberships": [],
        "archive_status": "Archived" if row["archived"] else "Active",
    }
    if with_count:
        terminal = tuple(s.value for s in TERMINAL)
        doc["unfinished_job_count"] = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE assigned_agent_pool_id = ? AND status NOT IN (?,?,?)",
            (pool_id, *terminal),
        ).fetchone()[0]
    return doc


@routes.post("/api/v2/agent_pools")
async def create_pool(request: web.Request) -> web.Response:
    reg = registry(request)
    new = await body(request, NewAgentPoolIn)
    pool_id = new_id()
    with transaction(reg.conn) as c:
        c.execute(
            "INSERT INTO pools(id, created, created_by_id, name, description) "
            "VALUES (?, ?, ?, ?, ?)",
            (pool_id, now(), principal(request).id, new.name, new.description),
        )
    return reply(pool_doc(reg.conn, pool_id))


@routes.put("/api/v2/agent_pools/{pool_id}")
async def update_pool(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = pool_row(reg.conn, path_id(request, "pool_id"))["id"]
    new = await body(request, NewAgentPoolIn)
    with transaction(reg.conn) as c:
        c.execute(
            "UPDATE pools SET name = ?, description = ? WHERE id = ?",
            (new.name, new.description, pool_id),
        )
    return reply(pool_doc(reg.conn, pool_id))


@routes.get("/api/v2/agent_pools/{pool_id}")
async def get_pool(request: web.Request) -> web.Response:
    return reply(pool_doc(registry(request).conn, path_id(request, "pool_id"), with_count=True))


@routes.get("/api/v2/agent_pools")
async def list_pools(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where = Where()
    where.archive_status(request)
    total = conn.execute(f"SELECT COUNT(*) FROM pools WHERE {where.sql}", where.args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT id FROM pools WHERE {where.sql} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*where.args, size, (page_no - 1) * size],
    ).fetchall()
    return reply(page([pool_doc(conn, r["id"]) for r in rows], total, page_no, size))


@routes.put("/api/v2/agent_pools/{pool_id}/agents")
async def add_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = pool_row(reg.conn, path_id(request, "pool_id"))["id"]
    new = await body(request, PoolAgentIn)
    agent_id = agent_row(reg.conn, new.agent_id)["id"]
    with transaction(reg.conn) as c:
        c.execute(
            "INSERT OR IGNORE INTO pool_members(id, pool_id, agent_id, created, created_by_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (new_id(), pool_id, agent_id, now(), principal(request).id),
        )
    reg.emit("agent.updated", {"agent_id": agent_id})
    reg.emit("pool.member_added", {"agent_id": agent_id, "agent_pool_id": pool_id})
    return reply(pool_doc(reg.conn, pool_id))


@routes.delete("/api/v2/agent_pools/{pool_id}/agents/{agent_id}")
async def remove_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = pool_row(reg.conn, path_id(request, "pool_id"))["id"]
    agent_id = path_id(request, "agent_id")
    with transaction(reg.conn) as c:
        gone = c.execute(
            "DELETE FROM pool_members WHERE pool_id = ? AND agent_id = ?", (pool_id, agent_id)
        ).rowcount
    if not gone:
        msg = f"agent {agent_id} is not a member of pool {pool_id}"
        raise NotFound(msg)
    return reply(pool_doc(reg.conn, pool_id))


@routes.get("/api/v2/agent_pools/{pool_id}/agents")
async def list_pool_agents(request: web.Request) -> web.Response:
    conn = registry(request).conn
    pool_id = pool_row(conn, path_id(request, "pool_id"))["id"]
    page_no, size = paging(request)
    total = conn.execute(
        "SELECT COUNT(*) FROM pool_members WHERE pool_id = ?", (pool_id,)
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT * FROM pool_members WHERE pool_id = ? ORDER BY created LIMIT ? OFFSET ?",
        (pool_id, size, (page_no - 1) * size),
    ).fetchall()
    items = [{**_membership(m), "agent": agent_doc(conn, m["agent_id"])} for m in rows]
    return reply(page(items, total, page_no, size))


async def _archive(request: web.Request, archived: int) -> web.Response:
    reg = registry(request)
    pool_id = pool_row(reg.conn, path_id(request, "pool_id"))["id"]
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        c.execute("UPDATE pools SET archived = ? WHERE id = ?", (archived, pool_id))
    if not archived:
        reg.emit("pool.restored", {"agent_pool_id": pool_id})
    return reply(pool_doc(reg.conn, pool_id))


@routes.delete("/api/v2/agent_pools/{pool_id}")
async def archive_pool(request: web.Request) -> web.Response:
    return await _archive(request, 1)


@routes.post("/api/v2/agent_pools/{pool_id}:restore")
async def restore_pool(request: web.Request) -> web.Response:
    return await _archive(request, 0)
