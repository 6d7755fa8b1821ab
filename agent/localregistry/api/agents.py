"""Agents: registration, information, status, modules, display name, public key.

Histories are append-only (the current value is the last entry, spec §0). An `Agent` body
carries the most recent `store.agents.HISTORY_IN_BODY` entries of each history, so a
long-lived agent's responses stay small; the whole status history is paged at
`.../status/history`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import NotFound, validation_error
from agent.localregistry.files import stable_id
from agent.localregistry.http import (
    body,
    optional_body,
    paging,
    parse,
    path_id,
    query_archived,
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
from agent.localregistry.store import agents, catalog
from agent.localregistry.wire import TENANT_ID, new_id, now, page
from agent.protocol import compat
from agent.protocol.states import AgentStatus

routes = web.RouteTableDef()


def wire(agent: agents.Agent) -> dict[str, Any]:
    """The wire `Agent`."""
    row = agent.row
    return {
        "id": row["id"],
        "created": row["created"],
        "display_name_history": agent.history["display_name"],
        "information_history": agent.history["information"],
        "status_history": agent.history["status"],
        "modules_history": agent.history["modules"],
        "agent_pools": agent.pools,
        "archive_status": "Archived" if row["archived"] else "Active",
        "created_by_id": row["created_by_id"],
        **_compatibility(agent.history["information"]),
    }


def _compatibility(information: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict on the API hashes the agent last registered with (none sent: compatible)."""
    hashes = information[-1].get("api_hashes") if information else None
    verdict = compat.judge(compat.decode(hashes)) if hashes else compat.Verdict("compatible")
    return {
        "compatibility_status": verdict.status,
        "incompatible_tags": list(verdict.incompatible_tags),
        "deprecated_tags": list(verdict.deprecated_tags),
    }


def _reply_agent(request: web.Request, agent_id: str) -> web.Response:
    return reply(wire(agents.read(registry(request).conn, agent_id)))


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


def _entry(request: web.Request, agent_id: str, **fields: Any) -> dict[str, Any]:
    """A new history entry of the agent, made by this request's principal."""
    return {
        "id": new_id(),
        "created": now(),
        "agent_id": agent_id,
        "created_by_id": principal(request).id,
        **fields,
    }


def _agent_id(request: web.Request) -> str:
    """The path's agent id, after checking the agent exists (404 otherwise)."""
    return str(agents.row(registry(request).conn, path_id(request, "agent_id"))["id"])


def _last(request: web.Request, kind: str, missing: str) -> web.Response:
    agent_id = _agent_id(request)
    found = agents.last(registry(request).conn, agent_id, kind)
    if found is None:
        msg = f"agent {agent_id} {missing}"
        raise NotFound(msg)
    return reply(found)


@routes.post("/api/v2/agents")
async def register_agent(request: web.Request) -> web.Response:
    reg = registry(request)
    info = await body(request, NewAgentIn)
    agent_id, created = new_id(), now()
    with transaction(reg.conn) as c:
        agents.register(c, created, _information(agent_id, info, principal(request).id))
    return _reply_agent(request, agent_id)


@routes.put("/api/v2/agents/{agent_id}")
async def update_information(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    info = await body(request, NewAgentIn)
    with transaction(reg.conn) as c:
        agents.update_information(c, _information(agent_id, info, principal(request).id))
    reg.emit("agent.updated", {"agent_id": agent_id})
    return _reply_agent(request, agent_id)


@routes.get("/api/v2/agents/{agent_id}")
async def get_agent(request: web.Request) -> web.Response:
    return _reply_agent(request, path_id(request, "agent_id"))


@routes.get("/api/v2/agents")
async def list_agents(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    archived = query_archived(request)
    status = query_enum(request, "status_name", AgentStatus)
    total, found = agents.listing(
        registry(request).conn,
        archived=archived,
        status=status.value if status else None,
        host_os=query_str(request, "host_os"),
        module=query_str(request, "module_name"),
        page_no=page_no,
        size=size,
    )
    return reply(page([wire(a) for a in found], total, page_no, size))


@routes.put("/api/v2/agents/{agent_id}/status")
async def update_status(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    new = await body(request, NewAgentStatusIn)
    doc = _entry(request, agent_id, name=new.name.value, message=None)
    with transaction(reg.conn) as c:
        agents.set_status(c, doc)
    return _reply_agent(request, agent_id)


@routes.get("/api/v2/agents/{agent_id}/status")
async def get_status(request: web.Request) -> web.Response:
    return _last(request, "status", "has not reported a status yet")


@routes.get("/api/v2/agents/{agent_id}/status/history")
async def status_history(request: web.Request) -> web.Response:
    agent_id = _agent_id(request)
    page_no, size = paging(request)
    total, docs = agents.status_page(registry(request).conn, agent_id, page_no, size)
    return reply(page(docs, total, page_no, size))


@routes.put("/api/v2/agents/{agent_id}/modules")
async def update_modules(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    raw = await read_json(request)
    if not isinstance(raw, list):
        raise parse_error()
    modules = [parse(ModuleVersionIn, item, f"body[{i}]") for i, item in enumerate(raw)]
    doc = _entry(request, agent_id)
    set_id, created, by = doc["id"], doc["created"], doc["created_by_id"]
    doc["module_versions"] = [
        {
            "id": stable_id(set_id, f"{m.module_name}@{m.module_version}"),
            "created": created,
            "agent_modules_id": set_id,
            "module_version_id": catalog.module_version_id(
                reg.conn, m.module_name, m.module_version
            ),
            "module_name": m.module_name,
            "module_version": m.module_version,
            "created_by_id": by,
        }
        for m in modules
    ]
    with transaction(reg.conn) as c:
        agents.set_modules(c, doc, [(m.module_name, m.module_version) for m in modules])
    reg.emit("agent.updated", {"agent_id": agent_id})
    return _reply_agent(request, agent_id)


def parse_error() -> Exception:
    return validation_error(["body"], "body must be a JSON array of {module_name, module_version}")


@routes.get("/api/v2/agents/{agent_id}/modules")
async def get_modules(request: web.Request) -> web.Response:
    return _last(request, "modules", "has not reported its modules yet")


@routes.put("/api/v2/agents/{agent_id}/display_name")
async def update_display_name(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    new = await body(request, DisplayNameIn)
    doc = _entry(request, agent_id, display_name=new.display_name)
    with transaction(reg.conn) as c:
        agents.set_display_name(c, doc)
    return _reply_agent(request, agent_id)


@routes.get("/api/v2/agents/{agent_id}/display_name")
async def get_display_name(request: web.Request) -> web.Response:
    return _last(request, "display_name", "has no display name")


@routes.put("/api/v2/agents/{agent_id}/public_key")
async def register_public_key(request: web.Request) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    new = await body(request, PublicKeyIn)
    doc = _entry(request, agent_id, public_key=new.public_key)
    with transaction(reg.conn) as c:
        agents.add_public_key(c, doc)
    return reply(doc)


async def _archive(request: web.Request, archived: bool) -> web.Response:
    reg = registry(request)
    agent_id = _agent_id(request)
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        agents.set_archived(c, agent_id, archived)
    return _reply_agent(request, agent_id)


@routes.delete("/api/v2/agents/{agent_id}")
async def archive_agent(request: web.Request) -> web.Response:
    return await _archive(request, True)


@routes.post("/api/v2/agents/{agent_id}:restore")
async def restore_agent(request: web.Request) -> web.Response:
    return await _archive(request, False)
