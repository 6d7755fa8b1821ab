"""Jobs: submission, status moves (the claim among them), assignment, `available_jobs`.

The rules of a move (the shared state table, claims, archiving) live with the rows, in
`store/jobs.py`; this module parses requests, tells listeners, and shapes the answers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.localregistry import credentials
from agent.localregistry.db import transaction
from agent.localregistry.files import build_revision, resource_base
from agent.localregistry.http import (
    body,
    optional_body,
    paging,
    path_id,
    query_archived,
    query_bool,
    query_enum,
    query_str,
    query_uuid,
    reply,
)
from agent.localregistry.inbound import (
    ArchiveIn,
    AssignedAgentIn,
    AssignedPoolIn,
    JobStatusMessageIn,
    NewJobIn,
)
from agent.localregistry.state import principal, registry
from agent.localregistry.store import agents, catalog, files, jobs, pools, resources
from agent.localregistry.store.credentials import bind
from agent.localregistry.wire import TENANT_ID, loads, new_id, page
from agent.protocol.osnames import OS
from agent.protocol.states import JobStatus

routes = web.RouteTableDef()

_STATUS_FIELDS = ("id", "created", "job_id", "name", "message", "agent_id", "created_by_id")


def wire(job: jobs.Job) -> dict[str, Any]:
    """The wire `Job`."""
    row = job.row
    claimed_by = row["claimed_by"]
    holder = {"agent_id": claimed_by, "display_name": row["holder_name"] or ""}
    return {
        **resource_base(row, job.file),
        "function": loads(row["function_doc"]),
        "assigned_agent_id": row["assigned_agent_id"],
        "assigned_agent_pool_id": row["assigned_agent_pool_id"],
        "agent_information": holder if claimed_by else None,
        "agent_id": claimed_by,
        "tenant_id": TENANT_ID,
        "model_id": row["model_id"],
        "status_history": [{k: s[k] for k in _STATUS_FIELDS} for s in job.statuses],
        "auth_deliveries": [],
        "tool_version": row["tool_version"],  # ours: what the submitter asked for (or None)
    }


def _pages(total: int, found: list[jobs.Job], page_no: int, size: int) -> web.Response:
    return reply(page([wire(j) for j in found], total, page_no, size))


def _offer(row: Any) -> dict[str, Any]:
    """A job.available event: the job, who may claim it, and the function it runs."""
    return {"job_id": row["id"], "agent_id": row["assigned_agent_id"],
            "agent_pool_id": row["assigned_agent_pool_id"], "module": row["module_name"],
            "function": row["function_name"], "tool_version": row["tool_version"],
            "operating_system": row["operating_system"]}  # fmt: skip


def _offer_if_pending(request: web.Request, job: jobs.Job) -> None:
    """Tell listeners a Pending job may be claimable, by whom its assignment says."""
    if job.row["status"] == JobStatus.PENDING and not job.row["archived"]:
        registry(request).emit("job.available", _offer(job.row))


@routes.post("/api/v2/models/{model_id}/jobs")
async def submit_job(request: web.Request) -> web.Response:
    reg = registry(request)
    model = resources.row(reg.conn, path_id(request, "model_id"))
    new = await body(request, NewJobIn)
    os_name = query_enum(request, "operating_system", OS)
    tool_version = query_str(request, "tool_version")
    function = catalog.resolve_function(
        reg.conn,
        name=query_str(request, "function_name", required=True) or "",
        module_name=query_str(request, "module_name"),
        version=query_str(request, "function_version"),
        tool_name=query_str(request, "tool_name"),
        tool_version=tool_version,
        os_name=os_name.value if os_name else None,
    )
    bindings = credentials.check_bindings(reg.conn, function, new.auth_bindings or [])
    agent_id = query_uuid(request, "assigned_agent_id")
    if agent_id is not None:
        agents.row(reg.conn, agent_id)
    pool_id = query_uuid(request, "assigned_agent_pool_id")
    if pool_id is not None:
        pools.row(reg.conn, pool_id)
    by = principal(request).id
    job_id = new_id()
    doc = await build_revision(reg.blobs, new.revision, new_id(), by)
    with transaction(reg.conn) as c:
        files.insert(c, doc, by, (job_id, "job"))
        jobs.submit(
            c, job_id, by, function, model_id=model["id"], file_id=doc["file_id"],
            tool_version=tool_version, operating_system=os_name.value if os_name else None,
            assigned_agent_id=agent_id, assigned_agent_pool_id=pool_id,
            creator_agent_id=query_uuid(request, "agent_id"),
        )  # fmt: skip
        bind(c, job_id, bindings)
    job = jobs.read(reg.conn, job_id)
    reg.emit("job.available", _offer(job.row))
    return reply(wire(job))


@routes.get("/api/v2/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    return reply(wire(jobs.read(registry(request).conn, path_id(request, "job_id"))))


@routes.put("/api/v2/jobs/{job_id}/status")
async def update_status(request: web.Request) -> web.Response:
    reg = registry(request)
    job_id = path_id(request, "job_id")
    new = query_enum(request, "status_name", JobStatus, required=True)
    assert new is not None
    agent_id = query_uuid(request, "agent_id")
    msg = await optional_body(request, JobStatusMessageIn)
    with transaction(reg.conn) as c:
        jobs.move(c, job_id, new, agent_id, msg.message if msg else None, principal(request).id)
    job = jobs.read(reg.conn, job_id)
    row = job.row
    reg.emit(
        "job.status",
        {"job_id": job_id, "status": new.value, "agent_id": row["claimed_by"],
         "assigned_agent_id": row["assigned_agent_id"],
         "agent_pool_id": row["assigned_agent_pool_id"], "message": msg.message if msg else None},
    )  # fmt: skip
    doc = wire(job)
    if new is JobStatus.CLAIMED and agent_id is not None:  # the claim's answer, and only it
        doc["auth_deliveries"] = credentials.deliveries(reg.conn, job_id, agent_id)
    return reply(doc)


@routes.get("/api/v2/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    archived = query_archived(request)
    model_id = query_uuid(request, "model_id")
    pool_id = query_uuid(request, "assigned_agent_pool_id")
    status = query_enum(request, "status_name", JobStatus)
    name = query_str(request, "name")
    query_bool(request, "include_total", True)  # validated; the total is always included
    total, found = jobs.listing(
        registry(request).conn, archived=archived, model_id=model_id, pool_id=pool_id,
        status=status, name=name, page_no=page_no, size=size,
    )  # fmt: skip
    return _pages(total, found, page_no, size)


@routes.get("/api/v2/models/{model_id}/jobs")
async def list_model_jobs(request: web.Request) -> web.Response:
    conn = registry(request).conn
    model_id = resources.row(conn, path_id(request, "model_id"))["id"]
    page_no, size = paging(request)
    status = query_enum(request, "status_name", JobStatus)
    total, found = jobs.listing(
        conn, archived=False, model_id=model_id, status=status, page_no=page_no, size=size
    )
    return _pages(total, found, page_no, size)


@routes.get("/api/v2/agents/{agent_id}/available_jobs")
async def available_jobs(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent = agents.row(conn, path_id(request, "agent_id"))
    page_no, size = paging(request)
    if agent["archived"]:
        return reply(page([], 0, page_no, size))
    total, found = jobs.available(conn, agent["id"], agent["host_os"], page_no, size)
    return _pages(total, found, page_no, size)


async def _assign(request: web.Request, column: jobs.Assignment, value: str | None) -> web.Response:
    reg = registry(request)
    job_id = path_id(request, "job_id")
    with transaction(reg.conn) as c:
        jobs.reassign(c, job_id, column, value)
    job = jobs.read(reg.conn, job_id)  # the whole assignment after the change, both columns
    _offer_if_pending(request, job)
    return reply(wire(job))


@routes.put("/api/v2/jobs/{job_id}/assigned_agent")
async def assign_agent(request: web.Request) -> web.Response:
    new = await body(request, AssignedAgentIn)
    agents.row(registry(request).conn, new.agent_id)
    return await _assign(request, "assigned_agent_id", new.agent_id)


@routes.delete("/api/v2/jobs/{job_id}/assigned_agent")
async def unassign_agent(request: web.Request) -> web.Response:
    return await _assign(request, "assigned_agent_id", None)


@routes.put("/api/v2/jobs/{job_id}/assigned_agent_pool")
async def assign_pool(request: web.Request) -> web.Response:
    new = await body(request, AssignedPoolIn)
    pools.row(registry(request).conn, new.agent_pool_id)
    return await _assign(request, "assigned_agent_pool_id", new.agent_pool_id)


@routes.delete("/api/v2/jobs/{job_id}/assigned_agent_pool")
async def unassign_pool(request: web.Request) -> web.Response:
    return await _assign(request, "assigned_agent_pool_id", None)


async def _archive(request: web.Request, archived: bool) -> web.Response:
    """Archive (withdraw) or restore a job (`store.jobs.set_archived` says when it may)."""
    reg = registry(request)
    job_id = jobs.row(reg.conn, path_id(request, "job_id"))["id"]
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        jobs.set_archived(c, job_id, archived)
    job = jobs.read(reg.conn, job_id)
    if not archived:
        _offer_if_pending(request, job)
    return reply(wire(job))


@routes.delete("/api/v2/jobs/{job_id}")
async def archive_job(request: web.Request) -> web.Response:
    return await _archive(request, True)


@routes.post("/api/v2/jobs/{job_id}:restore")
async def restore_job(request: web.Request) -> web.Response:
    return await _archive(request, False)
