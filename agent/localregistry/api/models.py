"""Models and artifacts: `/api/v2/models`, `/api/v2/artifacts`, `/api/v2/files`."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, NotFound
from agent.localregistry.files import (
    add_revision,
    build_revision,
    file_doc,
    insert_file,
    resource_base,
)
from agent.localregistry.http import body, paging, path_id, query_uuid, reply
from agent.localregistry.inbound import FileRevisionIn
from agent.localregistry.state import principal, registry
from agent.localregistry.wire import new_id, now, page
from agent.protocol.states import TERMINAL, JobStatus

routes = web.RouteTableDef()


def resource_row(conn: sqlite3.Connection, rid: str, kind: str | None = None) -> sqlite3.Row:
    """A model or artifact row, or 404."""
    row = conn.execute("SELECT * FROM resources WHERE id = ?", (rid,)).fetchone()
    if row is None or (kind is not None and row["kind"] != kind):
        msg = f"no {kind or 'model or artifact'} with id {rid}"
        raise NotFound(msg)
    return row  # type: ignore[no-any-return]


def artifact_doc(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """The wire `Artifact`."""
    return {
        **resource_base(conn, row),
        "model_id": row["parent_id"],
        "control_tags": [],
    }


def model_doc(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """The wire `Model`, with its artifacts (the legacy client requires the list)."""
    arts = conn.execute(
        "SELECT * FROM resources WHERE kind = 'artifact' AND parent_id = ? ORDER BY created",
        (row["id"],),
    ).fetchall()
    return {
        **resource_base(conn, row),
        "artifacts": [artifact_doc(conn, a) for a in arts],
        "control_tags": [],
    }


def resource_doc(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    """A model or artifact in its own wire shape."""
    return model_doc(conn, row) if row["kind"] == "model" else artifact_doc(conn, row)


def check_source_job(conn: sqlite3.Connection, job_id: str | None) -> None:
    """Refuse an upload linked to a job that is canceled or already finished (409)."""
    if job_id is None:
        return
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        msg = f"no job with id {job_id} (source_job_id)"
        raise NotFound(msg)
    status = JobStatus(row["status"])
    if status is JobStatus.CANCELED:
        msg = f"job {job_id} has been canceled; its outputs are not accepted"
        raise Conflict(msg)
    if status in TERMINAL:
        msg = f"job {job_id} is already {status}; it takes no more outputs"
        raise Conflict(msg)


async def _create_resource(
    request: web.Request, kind: str, parent_id: str | None
) -> dict[str, Any]:
    reg = registry(request)
    by = principal(request).id
    rev = await body(request, FileRevisionIn)
    job_id = query_uuid(request, "source_job_id")
    check_source_job(reg.conn, job_id)
    doc = await build_revision(reg.blobs, rev, new_id(), by)
    rid = new_id()
    with transaction(reg.conn) as c:
        # Re-checked inside the transaction: the job may have been canceled meanwhile.
        check_source_job(c, job_id)
        insert_file(c, doc, by, (rid, kind))
        c.execute(
            "INSERT INTO resources(id, kind, created, file_id, parent_id, source_job_id, "
            "created_by_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rid, kind, now(), doc["file_id"], parent_id, job_id, by),
        )
    return resource_doc(reg.conn, resource_row(reg.conn, rid))


@routes.post("/api/v2/models")
async def create_model(request: web.Request) -> web.Response:
    return reply(await _create_resource(request, "model", None))


@routes.get("/api/v2/models")
async def list_models(request: web.Request) -> web.Response:
    return _list(request, "model", None)


@routes.get("/api/v2/models/{model_id}")
async def get_model(request: web.Request) -> web.Response:
    conn = registry(request).conn
    return reply(model_doc(conn, resource_row(conn, path_id(request, "model_id"), "model")))


@routes.put("/api/v2/models/{model_id}")
async def update_model(request: web.Request) -> web.Response:
    return reply(await _new_revision(request, "model_id", "model"))


@routes.put("/api/v2/artifacts/{artifact_id}")
async def update_artifact(request: web.Request) -> web.Response:
    return reply(await _new_revision(request, "artifact_id", "artifact"))


async def _new_revision(request: web.Request, key: str, kind: str) -> dict[str, Any]:
    reg = registry(request)
    row = resource_row(reg.conn, path_id(request, key), kind)
    rev = await body(request, FileRevisionIn)
    job_id = query_uuid(request, "source_job_id")
    check_source_job(reg.conn, job_id)
    doc = await build_revision(reg.blobs, rev, row["file_id"], principal(request).id)
    with transaction(reg.conn) as c:
        check_source_job(c, job_id)
        add_revision(c, row["file_id"], doc)
    return resource_doc(reg.conn, row)


@routes.post("/api/v2/models/{model_id}/artifacts")
async def create_artifact(request: web.Request) -> web.Response:
    reg = registry(request)
    parent = resource_row(reg.conn, path_id(request, "model_id"))
    return reply(await _create_resource(request, "artifact", parent["id"]))


@routes.get("/api/v2/models/{model_id}/artifacts")
async def list_model_artifacts(request: web.Request) -> web.Response:
    conn = registry(request).conn
    parent = resource_row(conn, path_id(request, "model_id"))
    return _list(request, "artifact", parent["id"])


@routes.get("/api/v2/artifacts")
async def list_artifacts(request: web.Request) -> web.Response:
    return _list(request, "artifact", None)


@routes.get("/api/v2/artifacts/{artifact_id}")
async def get_artifact(request: web.Request) -> web.Response:
    conn = registry(request).conn
    row = resource_row(conn, path_id(request, "artifact_id"), "artifact")
    return reply(artifact_doc(conn, row))


@routes.get("/api/v2/files/{file_id}")
async def get_file(request: web.Request) -> web.Response:
    return reply(file_doc(registry(request).conn, path_id(request, "file_id")))


def _list(request: web.Request, kind: str, parent_id: str | None) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where, args = "kind = ? AND archived = 0", [kind]
    if parent_id is not None:
        where += " AND parent_id = ?"
        args.append(parent_id)
    total = conn.execute(f"SELECT COUNT(*) FROM resources WHERE {where}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT * FROM resources WHERE {where} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*args, size, (page_no - 1) * size],
    ).fetchall()
    return reply(page([resource_doc(conn, r) for r in rows], total, page_no, size))
