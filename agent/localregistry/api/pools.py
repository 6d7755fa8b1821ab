"""Agent pools: `/api/v2/agent_pools...`. A job assigned to a pool goes to one member."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry.api import agents as agent_api
from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound
from agent.localregistry.http import body, optional_body, paging, path_id, query_archived, reply
from agent.localregistry.inbound import ArchiveIn, NewAgentPoolIn, PoolAgentIn
from agent.localregistry.state import principal, registry
from agent.localregistry.store import agents, pools
from agent.localregistry.wire import TENANT_ID, new_id, now, page

routes = web.RouteTableDef()


def membership_wire(m: sqlite3.Row) -> dict[str, Any]:
    """The wire `AgentPoolMembership`."""
    return {
        "id": m["id"],
        "created": m["created"],
        "created_by_id": m["created_by_id"],
        "agent_id": m["agent_id"],
        "agent_pool_id": m["pool_id"],
        "archive_status": "Active",
    }


def wire(pool: pools.Pool) -> dict[str, Any]:
    """The wire `AgentPool` (with `unfinished_job_count` when it was counted)."""
    row = pool.row
    doc: dict[str, Any] = {
        "id": row["id"],
        "created": row["created"],
        "created_by_id": row["created_by_id"],
        "name": row["name"],
        "description": row["description"],
        "tenant_id": TENANT_ID,
        "agent_memberships": [membership_wire(m) for m in pool.members],
        "user_memberships": [],
        "archive_status": "Archived" if row["archived"] else "Active",
    }
    if pool.unfinished is not None:
        doc["unfinished_job_count"] = pool.unfinished
    return doc


def _reply_pool(request: web.Request, pool_id: str, *, with_count: bool = False) -> web.Response:
    return reply(wire(pools.read(registry(request).conn, pool_id, with_count=with_count)))


def _pool_id(request: web.Request) -> str:
    """The path's pool id, after checking the pool exists (404 otherwise)."""
    return str(pools.row(registry(request).conn, path_id(request, "pool_id"))["id"])


@routes.post("/api/v2/agent_pools")
async def create_pool(request: web.Request) -> web.Response:
    reg = registry(request)
    new = await body(request, NewAgentPoolIn)
    pool_id = new_id()
    with transaction(reg.conn) as c:
        pools.create(c, pool_id, now(), principal(request).id, new.name, new.description)
    return _reply_pool(request, pool_id)


@routes.put("/api/v2/agent_pools/{pool_id}")
async def update_pool(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = _pool_id(request)
    new = await body(request, NewAgentPoolIn)
    with transaction(reg.conn) as c:
        pools.update(c, pool_id, new.name, new.description)
    return _reply_pool(request, pool_id)


@routes.get("/api/v2/agent_pools/{pool_id}")
async def get_pool(request: web.Request) -> web.Response:
    return _reply_pool(request, path_id(request, "pool_id"), with_count=True)


@routes.get("/api/v2/agent_pools")
async def list_pools(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    conn = registry(request).conn
    total, found = pools.listing(conn, query_archived(request), page_no, size)
    return reply(page([wire(p) for p in found], total, page_no, size))


@routes.put("/api/v2/agent_pools/{pool_id}/agents")
async def add_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = _pool_id(request)
    new = await body(request, PoolAgentIn)
    agent_id = agents.row(reg.conn, new.agent_id)["id"]
    with transaction(reg.conn) as c:
        pools.add_member(c, new_id(), pool_id, agent_id, now(), principal(request).id)
    reg.emit("agent.updated", {"agent_id": agent_id})
    reg.emit("pool.member_added", {"agent_id": agent_id, "agent_pool_id": pool_id})
    return _reply_pool(request, pool_id)


@routes.delete("/api/v2/agent_pools/{pool_id}/agents/{agent_id}")
async def remove_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    pool_id = _pool_id(request)
    agent_id = path_id(request, "agent_id")
    with transaction(reg.conn) as c:
        gone = pools.remove_member(c, pool_id, agent_id)
    if not gone:
        msg = f"agent {agent_id} is not a member of pool {pool_id}"
        raise NotFound(msg)
    return _reply_pool(request, pool_id)


@routes.get("/api/v2/agent_pools/{pool_id}/agents")
async def list_pool_agents(request: web.Request) -> web.Response:
    conn = registry(request).conn
    pool_id = _pool_id(request)
    page_no, size = paging(request)
    total, members = pools.members_page(conn, pool_id, page_no, size)
    found = agents.read_many(conn, (m["agent_id"] for m in members))
    items = [{**membership_wire(m), "agent": agent_api.wire(found[m["agent_id"]])} for m in members]
    return reply(page(items, total, page_no, size))


async def _archive(request: web.Request, archived: bool) -> web.Response:
    reg = registry(request)
    pool_id = _pool_id(request)
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        pools.set_archived(c, pool_id, archived)
    if not archived:
        reg.emit("pool.restored", {"agent_pool_id": pool_id})
    return _reply_pool(request, pool_id)


@routes.delete("/api/v2/agent_pools/{pool_id}")
async def archive_pool(request: web.Request) -> web.Response:
    return await _archive(request, True)


@routes.post("/api/v2/agent_pools/{pool_id}:restore")
async def restore_pool(request: web.Request) -> web.Response:
    return await _archive(request, False)
