"""Agents: registration, information, status, modules, display name, public key.

Histories are append-only (the current value is the last entry, spec §0). An `Agent` body
carries the most recent `HISTORY_IN_BODY` entries of each history, so a long-lived agent's
responses stay small; the whole status history is paged at `.../status/history`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound, validation_error
from agent.localregistry.files import stable_id
from agent.localregistry.http import (
    Where,
    body,
    optional_body,
    paging,
    parse,
    path_id,
    query_enum,
    query_str,
    read_json,
    reply,
)
from agent.localregistry.inbound import (
    ArchiveIn,
    DisplayNameIn,
    ModuleVersionIn,
    NewAgentIn,
    NewAgentStatusIn,
    PublicKeyIn,
)
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import TENANT_ID, dumps, loads, new_id, now, page
from agent.protocol.states import AgentStatus

routes = web.RouteTableDef()

HISTORY_IN_BODY = 50
_KINDS = ("information", "status", "modules", "display_name", "public_key")


def agent_row(conn: sqlite3.Connection, agent_id: str) -> sqlite3.Row:
    """The agent's row, or 404."""
    row = conn.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        msg = f"no agent with id {agent_id}"
        raise NotFound(msg)
    return row  # type: ignore[no-any-return]


def _history(conn: sqlite3.Connection, agent_id: str, kind: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT doc FROM (SELECT doc, rowid FROM agent_history WHERE agent_id = ? AND kind = ? "
        "ORDER BY rowid DESC LIMIT ?) ORDER BY rowid",
        (agent_id, kind, HISTORY_IN_BODY),
    ).fetchall()
    return [loads(r["doc"]) for r in rows]


def agent_doc(conn: sqlite3.Connection, agent_id: str) -> dict[str, Any]:
    """The wire `Agent`."""
    row = agent_row(conn, agent_id)
    pools = conn.execute(
        "SELECT pool_id FROM pool_members WHERE agent_id = ? ORDER BY created", (agent_id,)
    ).fetchall()
    return {
        "id": row["id"],
        "created": row["created"],
        "display_name_history": _history(conn, agent_id, "display_name"),
        "information_history": _history(conn, agent_id, "information"),
        "status_history": _history(conn, agent_id, "status"),
        "modules_history": _history(conn, agent_id, "modules"),
        "agent_pools": [p["pool_id"] for p in pools],
        "archive_status": "Archived" if row["archived"] else "Active",
        "created_by_id": row["created_by_id"],
        "compatibility_status": "compatible",
        "incompatible_tags": [],
        "deprecated_tags": [],
    }


def display_name(conn: sqlite3.Connection, agent_id: str) -> str:
    """The agent's current display name ('' when it never set one)."""
    hist = _history(conn, agent_id, "display_name")
    return str(hist[-1]["display_name"]) if hist else ""


def _append(conn: sqlite3.Connection, agent_id: str, kind: str, doc: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO agent_history(id, agent_id, kind, created, doc) VALUES (?, ?, ?, ?, ?)",
        (doc["id"], agent_id, kind, doc["created"], dumps(doc)),
    )


def _information(agent_id: str, info: NewAgentIn, by: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "created": now(),
        "agent_id": agent_id,
        "agent_version": info.agent_version,
        "host_os": info.host_os,
        "worker_mode": info.worker_mode,
        "tenant_id": TENANT_ID,
        "created_by_id": by,
        "api_hashes": info.api_hashes,
        "capabilities": info.capabilities or [],
    }


@routes.post("/api/v2/agents")
async def register_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    info = await body(request, NewAgentIn)
    agent_id, by = new_id(), principal(request).id
    with transaction(reg.conn) as c:
        c.execute(
            "INSERT INTO agents(id, created, created_by_id, host_os, capabilities) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent_id, now(), by, info.host_os, dumps(info.capabilities or [])),
        )
        _append(c, agent_id, "information", _information(agent_id, info, by))
    return reply(agent_doc(reg.conn, agent_id))


@routes.put("/api/v2/agents/{agent_id}")
async def update_information(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    info = await body(request, NewAgentIn)
    with transaction(reg.conn) as c:
        c.execute(
            "UPDATE agents SET host_os = ?, capabilities = ? WHERE id = ?",
            (info.host_os, dumps(info.capabilities or []), agent_id),
        )
        _append(c, agent_id, "information", _information(agent_id, info, principal(request).id))
    reg.emit("agent.updated", {"agent_id": agent_id})
    return reply(agent_doc(reg.conn, agent_id))


@routes.get("/api/v2/agents/{agent_id}")
async def get_agent(request: web.Request) -> web.Response:
    return reply(agent_doc(registry(request).conn, path_id(request, "agent_id")))


@routes.get("/api/v2/agents")
async def list_agents(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where = Where()
    where.archive_status(request)
    status = query_enum(request, "status_name", AgentStatus)
    if status is not None:
        where.add("status = ?", status.value)
    host_os = query_str(request, "host_os")
    if host_os is not None:
        where.add("host_os = ?", host_os)
    module = query_str(request, "module_name")
    if module is not None:
        where.add("id IN (SELECT agent_id FROM agent_modules WHERE module_name = ?)", module)
    clause, args = where.sql, where.args
    total = conn.execute(f"SELECT COUNT(*) FROM agents WHERE {clause}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT id FROM agents WHERE {clause} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*args, size, (page_no - 1) * size],
    ).fetchall()
    return reply(page([agent_doc(conn, r["id"]) for r in rows], total, page_no, size))


@routes.put("/api/v2/agents/{agent_id}/status")
async def update_status(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    new = await body(request, NewAgentStatusIn)
    doc = {
        "id": new_id(),
        "created": now(),
        "agent_id": agent_id,
        "name": new.name.value,
        "created_by_id": principal(request).id,
        "message": None,
    }
    with transaction(reg.conn) as c:
        c.execute("UPDATE agents SET status = ? WHERE id = ?", (new.name.value, agent_id))
        _append(c, agent_id, "status", doc)
    return reply(agent_doc(reg.conn, agent_id))


@routes.get("/api/v2/agents/{agent_id}/status")
async def get_status(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent_id = agent_row(conn, path_id(request, "agent_id"))["id"]
    hist = _history(conn, agent_id, "status")
    if not hist:
        msg = f"agent {agent_id} has not reported a status yet"
        raise NotFound(msg)
    return reply(hist[-1])


@routes.get("/api/v2/agents/{agent_id}/status/history")
async def status_history(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent_id = agent_row(conn, path_id(request, "agent_id"))["id"]
    page_no, size = paging(request)
    total = conn.execute(
        "SELECT COUNT(*) FROM agent_history WHERE agent_id = ? AND kind = 'status'", (agent_id,)
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT doc FROM agent_history WHERE agent_id = ? AND kind = 'status' "
        "ORDER BY rowid LIMIT ? OFFSET ?",
        (agent_id, size, (page_no - 1) * size),
    ).fetchall()
    return reply(page([loads(r["doc"]) for r in rows], total, page_no, size))


@routes.put("/api/v2/agents/{agent_id}/modules")
async def update_modules(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    raw = await read_json(request)
    if not isinstance(raw, list):
        raise parse_error()
    modules = [parse(ModuleVersionIn, item, f"body[{i}]") for i, item in enumerate(raw)]
    created, by = now(), principal(request).id
    set_id = new_id()
    doc = {
        "id": set_id,
        "created": created,
        "agent_id": agent_id,
        "created_by_id": by,
        "module_versions": [
            {
                "id": stable_id(set_id, f"{m.module_name}@{m.module_version}"),
                "created": created,
                "agent_modules_id": set_id,
                "module_version_id": _module_version_id(reg.conn, m),
                "module_name": m.module_name,
                "module_version": m.module_version,
                "created_by_id": by,
            }
            for m in modules
        ],
    }
    with transaction(reg.conn) as c:
        c.execute("DELETE FROM agent_modules WHERE agent_id = ?", (agent_id,))
        c.executemany(
            "INSERT OR IGNORE INTO agent_modules(agent_id, module_name, module_version) "
            "VALUES (?, ?, ?)",
            [(agent_id, m.module_name, m.module_version) for m in modules],
        )
        _append(c, agent_id, "modules", doc)
    reg.emit("agent.updated", {"agent_id": agent_id})
    return reply(agent_doc(reg.conn, agent_id))


def parse_error() -> Exception:
    return validation_error(["body"], "body must be a JSON array of {module_name, module_version}")


def _module_version_id(conn: sqlite3.Connection, m: ModuleVersionIn) -> str | None:
    row = conn.execute(
        "SELECT id FROM module_versions WHERE module_name = ? AND module_version = ?",
        (m.module_name, m.module_version),
    ).fetchone()
    return None if row is None else str(row["id"])


@routes.get("/api/v2/agents/{agent_id}/modules")
async def get_modules(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent_id = agent_row(conn, path_id(request, "agent_id"))["id"]
    hist = _history(conn, agent_id, "modules")
    if not hist:
        msg = f"agent {agent_id} has not reported its modules yet"
        raise NotFound(msg)
    return reply(hist[-1])


@routes.put("/api/v2/agents/{agent_id}/display_name")
async def update_display_name(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    new = await body(request, DisplayNameIn)
    doc = {
        "id": new_id(),
        "created": now(),
        "agent_id": agent_id,
        "display_name": new.display_name,
        "created_by_id": principal(request).id,
    }
    with transaction(reg.conn) as c:
        _append(c, agent_id, "display_name", doc)
    return reply(agent_doc(reg.conn, agent_id))


@routes.get("/api/v2/agents/{agent_id}/display_name")
async def get_display_name(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent_id = agent_row(conn, path_id(request, "agent_id"))["id"]
    hist = _history(conn, agent_id, "display_name")
    if not hist:
        msg = f"agent {agent_id} has no display name"
        raise NotFound(msg)
    return reply(hist[-1])


@routes.put("/api/v2/agents/{agent_id}/public_key")
async def register_public_key(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    new = await body(request, PublicKeyIn)
    doc = {
        "id": new_id(),
        "created": now(),
        "created_by_id": principal(request).id,
        "agent_id": agent_id,
        "public_key": new.public_key,
    }
    with transaction(reg.conn) as c:
        _append(c, agent_id, "public_key", doc)
    return reply(doc)


async def _archive(request: web.Request, archived: int) -> web.Response:
    reg = registry(request)
    agent_id = agent_row(reg.conn, path_id(request, "agent_id"))["id"]
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        c.execute("UPDATE agents SET archived = ? WHERE id = ?", (archived, agent_id))
    return reply(agent_doc(reg.conn, agent_id))


@routes.delete("/api/v2/agents/{agent_id}")
async def archive_agent(request: web.Request) -> web.Response:
    return await _archive(request, 1)


@routes.post("/api/v2/agents/{agent_id}:restore")
async def restore_agent(request: web.Request) -> web.Response:
    return await _archive(request, 0)
