"""Models and artifacts: `/api/v2/models`, `/api/v2/artifacts`, `/api/v2/files`.

An upload with `source_job_id` (a new model or artifact, or a new revision of one) is linked
to that job, refused with 409 once the job is canceled or over, and found again by it: the
listings take `source_job_id` too (inferred: docs/local-registry.md).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, NotFound
from agent.localregistry.files import build_revision, file_wire, resource_base
from agent.localregistry.http import body, paging, path_id, query_uuid, reply
from agent.localregistry.inbound import FileRevisionIn
from agent.localregistry.state import principal, registry
from agent.localregistry.store import files, jobs, resources
from agent.localregistry.wire import new_id, now, page
from agent.protocol.states import TERMINAL, JobStatus

routes = web.RouteTableDef()


def wire(resource: resources.Resource) -> dict[str, Any]:
    """A model or artifact in its own wire shape: a `Model` with its artifacts (the legacy
    client requires the list), or an `Artifact`."""
    row = resource.row
    if row["kind"] == "model":
        artifacts = [wire(a) for a in resource.artifacts]
        return {**resource_base(row, resource.file), "artifacts": artifacts, "control_tags": []}
    return {**resource_base(row, resource.file), "model_id": row["parent_id"], "control_tags": []}


def _reply_resource(request: web.Request, rid: str, kind: str | None = None) -> web.Response:
    return reply(wire(resources.read(registry(request).conn, rid, kind)))


def check_source_job(status: JobStatus | None, job_id: str | None) -> None:
    """Refuse an upload linked to a job that is canceled or already finished (409)."""
    if job_id is None:
        return
    if status is None:
        msg = f"no job with id {job_id} (source_job_id)"
        raise NotFound(msg)
    if status is JobStatus.CANCELED:
        msg = f"job {job_id} has been canceled; its outputs are not accepted"
        raise Conflict(msg)
    if status in TERMINAL:
        msg = f"job {job_id} is already {status}; it takes no more outputs"
        raise Conflict(msg)


def _source_job(request: web.Request) -> str | None:
    """The `source_job_id` parameter, checked against the job's status now."""
    job_id = query_uuid(request, "source_job_id")
    if job_id is not None:
        check_source_job(jobs.status_of(registry(request).conn, job_id), job_id)
    return job_id


async def _create_resource(request: web.Request, kind: str, parent_id: str | None) -> str:
    reg = registry(request)
    by = principal(request).id
    rev = await body(request, FileRevisionIn)
    job_id = _source_job(request)
    doc = await build_revision(reg.blobs, rev, new_id(), by)
    rid = new_id()
    with transaction(reg.conn) as c:
        # Re-checked inside the transaction: the job may have been canceled meanwhile.
        check_source_job(jobs.status_of(c, job_id) if job_id else None, job_id)
        files.insert(c, doc, by, (rid, kind), job_id)
        resources.insert(c, rid, kind, doc["file_id"], parent_id, job_id, by, now())
    return rid


@routes.post("/api/v2/models")
async def create_model(request: web.Request) -> web.Response:
    return _reply_resource(request, await _create_resource(request, "model", None))


@routes.get("/api/v2/models")
async def list_models(request: web.Request) -> web.Response:
    return _list(request, "model", None)


@routes.get("/api/v2/models/{model_id}")
async def get_model(request: web.Request) -> web.Response:
    return _reply_resource(request, path_id(request, "model_id"), "model")


@routes.put("/api/v2/models/{model_id}")
async def update_model(request: web.Request) -> web.Response:
    return await _new_revision(request, "model_id", "model")


@routes.put("/api/v2/artifacts/{artifact_id}")
async def update_artifact(request: web.Request) -> web.Response:
    return await _new_revision(request, "artifact_id", "artifact")


async def _new_revision(request: web.Request, key: str, kind: str) -> web.Response:
    reg = registry(request)
    row = resources.row(reg.conn, path_id(request, key), kind)
    rev = await body(request, FileRevisionIn)
    job_id = _source_job(request)
    doc = await build_revision(reg.blobs, rev, row["file_id"], principal(request).id)
    with transaction(reg.conn) as c:
        check_source_job(jobs.status_of(c, job_id) if job_id else None, job_id)
        files.add_revision(c, row["file_id"], doc, job_id)  # the same one again: a no-op
    return _reply_resource(request, row["id"])


@routes.post("/api/v2/models/{model_id}/artifacts")
async def create_artifact(request: web.Request) -> web.Response:
    parent = resources.row(registry(request).conn, path_id(request, "model_id"))
    return _reply_resource(request, await _create_resource(request, "artifact", parent["id"]))


@routes.get("/api/v2/models/{model_id}/artifacts")
async def list_model_artifacts(request: web.Request) -> web.Response:
    parent = resources.row(registry(request).conn, path_id(request, "model_id"))
    return _list(request, "artifact", parent["id"])


@routes.get("/api/v2/artifacts")
async def list_artifacts(request: web.Request) -> web.Response:
    return _list(request, "artifact", None)


@routes.get("/api/v2/artifacts/{artifact_id}")
async def get_artifact(request: web.Request) -> web.Response:
    return _reply_resource(request, path_id(request, "artifact_id"), "artifact")


@routes.get("/api/v2/files/{file_id}")
async def get_file(request: web.Request) -> web.Response:
    return reply(file_wire(files.read(registry(request).conn, path_id(request, "file_id"))))


def _list(request: web.Request, kind: str, parent_id: str | None) -> web.Response:
    """A page of models or artifacts; `source_job_id`: only those that job uploaded (a
    revision of, whether it created them or added the revision later)."""
    page_no, size = paging(request)
    job_id = query_uuid(request, "source_job_id")
    conn = registry(request).conn
    total, found = resources.listing(conn, kind, parent_id, page_no, size, job_id)
    return reply(page([wire(r) for r in found], total, page_no, size))
