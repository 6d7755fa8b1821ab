"""Jobs: submission, status moves (the claim among them), assignment, `available_jobs`.

Every status move runs the shared state table (`agent.protocol.states`) inside one immediate
transaction with a guarded UPDATE, so of two agents claiming the same Pending job exactly one
gets 200 and the other 409, whatever the interleaving.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry import credentials
from agent.localregistry.api.agents import agent_row, display_name
from agent.localregistry.api.models import resource_row
from agent.localregistry.api.pools import pool_row
from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, NotFound
from agent.localregistry.files import (
    build_revision,
    insert_file,
    resource_base,
)
from agent.localregistry.http import (
    Where,
    body,
    optional_body,
    paging,
    path_id,
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
from agent.localregistry.matching import available_clause, resolve_function
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import TENANT_ID, loads, new_id, now, page
from agent.protocol.osnames import OS
from agent.protocol.states import ACTIVE, AGENT_ONLY, JobStatus, can_move, predecessors

routes = web.RouteTableDef()


def job_row(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
    """The job's row, or 404."""
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        msg = f"no job with id {job_id}"
        raise NotFound(msg)
    return row  # type: ignore[no-any-return]


def job_doc(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """The wire `Job`."""
    statuses = conn.execute(
        "SELECT * FROM job_status WHERE job_id = ? ORDER BY seq", (row["id"],)
    ).fetchall()
    function = conn.execute("SELECT doc FROM functions WHERE id = ?", (row["function_id"],))
    claimed_by = row["claimed_by"]
    return {
        **resource_base(conn, row),
        "function": loads(function.fetchone()["doc"]),
        "assigned_agent_id": row["assigned_agent_id"],
        "assigned_agent_pool_id": row["assigned_agent_pool_id"],
        "agent_information": (
            {"agent_id": claimed_by, "display_name": display_name(conn, claimed_by)}
            if claimed_by
            else None
        ),
        "agent_id": claimed_by,
        "tenant_id": TENANT_ID,
        "model_id": row["model_id"],
        "status_history": [
            {
                "id": s["id"],
                "created": s["created"],
                "job_id": s["job_id"],
                "name": s["name"],
                "message": s["message"],
                "agent_id": s["agent_id"],
                "created_by_id": s["created_by_id"],
            }
            for s in statuses
        ],
        "auth_deliveries": [],
    }


def _append_status(
    conn: sqlite3.Connection,
    job_id: str,
    status: JobStatus,
    by: str,
    agent_id: str | None = None,
    message: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO job_status(id, job_id, seq, created, name, message, agent_id, created_by_id) "
        "VALUES (?, ?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM job_status WHERE job_id = ?), "
        "?, ?, ?, ?, ?)",
        (new_id(), job_id, job_id, now(), status.value, message, agent_id, by),
    )


@routes.post("/api/v2/models/{model_id}/jobs")
async def submit_job(request: web.Request) -> web.Response:
    reg = registry(request)
    model = resource_row(reg.conn, path_id(request, "model_id"))
    new = await body(request, NewJobIn)
    os_name = query_enum(request, "operating_system", OS)
    tool_version = query_str(request, "tool_version")
    function = resolve_function(
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
        agent_row(reg.conn, agent_id)
    pool_id = query_uuid(request, "assigned_agent_pool_id")
    if pool_id is not None:
        pool_row(reg.conn, pool_id)
    by = principal(request).id
    job_id = new_id()
    doc = await build_revision(reg.blobs, new.revision, new_id(), by)
    with transaction(reg.conn) as c:
        insert_file(c, doc, by, (job_id, "job"))
        c.execute(
            "INSERT INTO jobs(id, created, created_by_id, model_id, file_id, function_id, "
            "function_name, module_name, tool_version, operating_system, assigned_agent_id, "
            "assigned_agent_pool_id, creator_agent_id, status) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id, now(), by, model["id"], doc["file_id"], function["id"],
                function["name"], function["module_name"], tool_version,
                os_name.value if os_name else None, agent_id, pool_id,
                query_uuid(request, "agent_id"), JobStatus.PENDING.value,
            ),
        )  # fmt: skip
        credentials.bind(c, job_id, bindings)
        _append_status(c, job_id, JobStatus.CREATED, by)
        _append_status(c, job_id, JobStatus.PENDING, by)
    row = job_row(reg.conn, job_id)
    reg.emit("job.available", _available(row))
    return reply(job_doc(reg.conn, row))


@routes.get("/api/v2/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    conn = registry(request).conn
    return reply(job_doc(conn, job_row(conn, path_id(request, "job_id"))))


def _claim_check(conn: sqlite3.Connection, job: sqlite3.Row, agent_id: str | None) -> None:
    if agent_id is None:
        msg = "a claim needs agent_id: PUT .../status?status_name=Claimed&agent_id=..."
        raise Conflict(msg)
    if job["archived"]:
        msg = f"job {job['id']} is archived; restore it (POST .../{job['id']}:restore) first"
        raise Conflict(msg)
    agent = agent_row(conn, agent_id)
    if agent["archived"]:
        msg = f"agent {agent_id} is archived and takes no new jobs"
        raise Conflict(msg)
    if job["assigned_agent_id"] and job["assigned_agent_id"] != agent_id:
        msg = f"job {job['id']} is assigned to another agent"
        raise Conflict(msg)
    pool = job["assigned_agent_pool_id"]
    if (
        pool
        and not conn.execute(
            "SELECT 1 FROM pool_members WHERE pool_id = ? AND agent_id = ?", (pool, agent_id)
        ).fetchone()
    ):
        msg = f"job {job['id']} is assigned to pool {pool}, which this agent is not in"
        raise Conflict(msg)
    credentials.check_claimable(conn, job["id"], agent_id)


def move(
    conn: sqlite3.Connection,
    job_id: str,
    new: JobStatus,
    agent_id: str | None,
    message: str | None,
    by: str,
) -> None:
    """Move a job to `new` if the table allows it (409 otherwise); caller holds the tx."""
    job = job_row(conn, job_id)
    current = JobStatus(job["status"])
    if not can_move(current, new):
        msg = f"job {job_id} is {current}; it cannot move to {new}"
        raise Conflict(msg)
    claimed_by = job["claimed_by"]
    guard = ""
    if new is JobStatus.CLAIMED:
        _claim_check(conn, job, agent_id)
        claimed_by = agent_id
        guard = " AND archived = 0"  # archived: withdrawn, never claimable (see _archive)
    elif new in AGENT_ONLY or new is JobStatus.PENDING:
        if agent_id is not None and claimed_by is not None and agent_id != claimed_by:
            msg = f"job {job_id} is claimed by another agent"
            raise Conflict(msg)
        if new is JobStatus.PENDING:
            claimed_by = None
    allowed = sorted(s.value for s in predecessors(new))
    marks = ",".join("?" * len(allowed))
    updated = conn.execute(
        f"UPDATE jobs SET status = ?, claimed_by = ? WHERE id = ? AND status IN ({marks}){guard}",  # noqa: S608
        (new.value, claimed_by, job_id, *allowed),
    ).rowcount
    if updated != 1:  # pragma: no cover - the row was read in this same transaction
        msg = f"job {job_id} changed status concurrently"
        raise Conflict(msg)
    _append_status(conn, job_id, new, by, agent_id or claimed_by, message)


@routes.put("/api/v2/jobs/{job_id}/status")
async def update_status(request: web.Request) -> web.Response:
    reg = registry(request)
    job_id = path_id(request, "job_id")
    new = query_enum(request, "status_name", JobStatus, required=True)
    assert new is not None
    agent_id = query_uuid(request, "agent_id")
    msg = await optional_body(request, JobStatusMessageIn)
    with transaction(reg.conn) as c:
        move(c, job_id, new, agent_id, msg.message if msg else None, principal(request).id)
    row = job_row(reg.conn, job_id)
    reg.emit(
        "job.status",
        {"job_id": job_id, "status": new.value, "agent_id": row["claimed_by"],
         "assigned_agent_id": row["assigned_agent_id"],
         "agent_pool_id": row["assigned_agent_pool_id"], "message": msg.message if msg else None},
    )  # fmt: skip
    doc = job_doc(reg.conn, row)
    if new is JobStatus.CLAIMED and agent_id is not None:  # the claim's answer, and only it
        doc["auth_deliveries"] = credentials.deliveries(reg.conn, job_id, agent_id)
    return reply(doc)


@routes.get("/api/v2/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where = Where()
    where.archive_status(request)
    for column in ("model_id", "assigned_agent_pool_id"):
        value = query_uuid(request, column)
        if value is not None:
            where.add(f"{column} = ?", value)
    status = query_enum(request, "status_name", JobStatus)
    if status is not None:
        where.add("status = ?", status.value)
    name_part = query_str(request, "name")
    if name_part:
        where.add("instr(lower(function_name), lower(?)) > 0", name_part)
    query_bool(request, "include_total", True)  # validated; the total is always included
    return _page_of_jobs(conn, where.sql, where.args, page_no, size)


def _page_of_jobs(
    conn: sqlite3.Connection,
    where: str,
    args: list[Any] | dict[str, Any],
    page_no: int,
    size: int,
) -> web.Response:
    if isinstance(args, dict):
        params: Any = {**args, "limit": size, "offset": (page_no - 1) * size}
        tail = "LIMIT :limit OFFSET :offset"
    else:
        params, tail = [*args, size, (page_no - 1) * size], "LIMIT ? OFFSET ?"
    total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT * FROM jobs WHERE {where} ORDER BY created, id {tail}",  # noqa: S608
        params,
    ).fetchall()
    return reply(page([job_doc(conn, r) for r in rows], total, page_no, size))


@routes.get("/api/v2/models/{model_id}/jobs")
async def list_model_jobs(request: web.Request) -> web.Response:
    conn = registry(request).conn
    model_id = resource_row(conn, path_id(request, "model_id"))["id"]
    page_no, size = paging(request)
    where = Where("model_id = ?", "archived = 0", args=[model_id])
    status = query_enum(request, "status_name", JobStatus)
    if status is not None:
        where.add("status = ?", status.value)
    return _page_of_jobs(conn, where.sql, where.args, page_no, size)


@routes.get("/api/v2/agents/{agent_id}/available_jobs")
async def available_jobs(request: web.Request) -> web.Response:
    conn = registry(request).conn
    agent = agent_row(conn, path_id(request, "agent_id"))
    page_no, size = paging(request)
    if agent["archived"]:
        return reply(page([], 0, page_no, size))
    where, args = available_clause(agent["id"], agent["host_os"])
    return _page_of_jobs(conn, where, args, page_no, size)


def _emit_available(request: web.Request, row: sqlite3.Row) -> None:
    """Tell listeners a Pending job may be claimable, by whom its assignment says."""
    if row["status"] == JobStatus.PENDING and not row["archived"]:
        registry(request).emit("job.available", _available(row))


def _available(row: sqlite3.Row) -> dict[str, Any]:
    """A job.available event: the job, who may claim it, and the function it runs."""
    return {"job_id": row["id"], "agent_id": row["assigned_agent_id"],
            "agent_pool_id": row["assigned_agent_pool_id"], "module": row["module_name"],
            "function": row["function_name"], "tool_version": row["tool_version"],
            "operating_system": row["operating_system"]}  # fmt: skip


async def _assign(request: web.Request, column: str, value: str | None) -> web.Response:
    reg = registry(request)
    job_id = path_id(request, "job_id")
    with transaction(reg.conn) as c:
        job = job_row(c, job_id)
        if JobStatus(job["status"]) not in {JobStatus.CREATED, JobStatus.PENDING}:
            msg = f"job {job_id} is {job['status']}; only a Pending job can be reassigned"
            raise Conflict(msg)
        c.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job_id))  # noqa: S608
    row = job_row(reg.conn, job_id)  # the whole assignment after the change, both columns
    _emit_available(request, row)
    return reply(job_doc(reg.conn, row))


@routes.put("/api/v2/jobs/{job_id}/assigned_agent")
async def assign_agent(request: web.Request) -> web.Response:
    new = await body(request, AssignedAgentIn)
    agent_row(registry(request).conn, new.agent_id)
    return await _assign(request, "assigned_agent_id", new.agent_id)


@routes.delete("/api/v2/jobs/{job_id}/assigned_agent")
async def unassign_agent(request: web.Request) -> web.Response:
    return await _assign(request, "assigned_agent_id", None)


@routes.put("/api/v2/jobs/{job_id}/assigned_agent_pool")
async def assign_pool(request: web.Request) -> web.Response:
    new = await body(request, AssignedPoolIn)
    pool_row(registry(request).conn, new.agent_pool_id)
    return await _assign(request, "assigned_agent_pool_id", new.agent_pool_id)


@routes.delete("/api/v2/jobs/{job_id}/assigned_agent_pool")
async def unassign_pool(request: web.Request) -> web.Response:
    return await _assign(request, "assigned_agent_pool_id", None)


async def _archive(request: web.Request, archived: int) -> web.Response:
    """Archive (withdraw) or restore a job.

    A job an agent holds (Claimed to Uploading) is not archived under it: the guarded UPDATE
    refuses with 409, so a job is never both held and archived, whichever of a claim and an
    archive comes first; cancel it, or let it end, then archive it. A claim of an archived
    job is refused the same way (`move`).
    """
    reg = registry(request)
    job_id = job_row(reg.conn, path_id(request, "job_id"))["id"]
    await optional_body(request, ArchiveIn)
    held = sorted(s.value for s in ACTIVE)
    with transaction(reg.conn) as c:
        guard = f" AND status NOT IN ({','.join('?' * len(held))})" if archived else ""
        updated = c.execute(
            f"UPDATE jobs SET archived = ? WHERE id = ?{guard}",  # noqa: S608
            (archived, job_id, *(held if archived else [])),
        ).rowcount
        if updated != 1:
            status = job_row(c, job_id)["status"]
            msg = (
                f"job {job_id} is {status}: an agent holds it, so it cannot be archived; "
                "cancel it (or let it end) first"
            )
            raise Conflict(msg)
    row = job_row(reg.conn, job_id)
    if not archived:
        _emit_available(request, row)
    return reply(job_doc(reg.conn, row))


@routes.delete("/api/v2/jobs/{job_id}")
async def archive_job(request: web.Request) -> web.Response:
    return await _archive(request, 1)


@routes.post("/api/v2/jobs/{job_id}:restore")
async def restore_job(request: web.Request) -> web.Response:
    return await _archive(request, 0)
