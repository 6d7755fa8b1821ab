"""External workflow logs (v3): workflow outputs and the log entries that own them.

`POST .../workflow_outputs` turns uploaded blobs into a file with one revision, owned by the
system; `POST .../workflow_log/entries` creates an entry that takes ownership of outputs of
the same system, each at most once. Listing lives in `workflow_list.py`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from agent.localregistry.db import transaction
from agent.localregistry.errors import validation_error
from agent.localregistry.files import build_revision
from agent.localregistry.http import body, is_uuid, optional_body, path_id, reply
from agent.localregistry.inbound import ArchiveIn, FileRevisionIn, Inbound
from agent.localregistry.state import principal, registry
from agent.localregistry.store import files, systems, workflows
from agent.localregistry.wire import loads, new_id, now

routes = web.RouteTableDef()

ENTRIES = "/api/v3/systems/{system_id}/workflow_log/entries"


class WorkflowOutputIn(FileRevisionIn):
    """`WorkflowOutputCreateDto`: a revision whose blobs were uploaded, with a required name."""

    name: str = Field(min_length=1, max_length=255)


class WorkflowLogEntryIn(Inbound):
    """`WorkflowLogEntryCreateDto`; explicit nulls take the defaults."""

    title: str | None = Field(default=None, max_length=255)
    status: str = Field(default="UNSPECIFIED", min_length=1, max_length=64)
    workflow_type: str = Field(default="external", min_length=1, max_length=64)
    configuration_id: str | None = None
    branch_id: str | None = None
    branchless: bool = False
    workflow_output_ids: list[str] = Field(default_factory=list, max_length=1000)

    @field_validator("status", "workflow_type", "branchless", "workflow_output_ids", mode="wrap")
    @classmethod
    def _null_is_default(cls, v: Any, handler: Any, info: Any) -> Any:
        if v is None:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return handler(v)


# -- wire shapes ----------------------------------------------------------------------------


def _token(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": t["id"],
        "sha": t["sha"],
        "salt": t["salt"],
        "created": t["created"],
        "object_store_id": None,
    }


def output_wire(row: sqlite3.Row) -> dict[str, Any]:
    """A `WorkflowOutputDto`; with `system_id` ignored, also a `WorkflowOutputFileDto`."""
    rev = loads(row["revision"])
    return {
        "id": row["id"],
        "system_id": row["system_id"],
        "file_id": row["file_id"],
        "file_revision_id": row["revision_id"],
        "content_token": _token(rev["content_token"]),
        "properties_token": _token(rev["properties_token"]),
        "name": rev["name"],
        "extension": rev["extension"],
        "size": rev["size"],
        "mime": rev["mime"],
        "description": rev["description"],
        "display_name": rev["display_name"],
        "external_identifier": rev["external_identifier"],
        "created": row["created"],
        "created_by_id": row["created_by_id"],
    }


def entry_wire(row: sqlite3.Row) -> dict[str, Any]:
    """A `WorkflowLogEntryDto`: file count and total size are those of the owned outputs."""
    return {
        "id": row["id"],
        "title": row["title"],
        "status": row["status"],
        "workflow_type": row["workflow_type"],
        "archived": bool(row["archived"]),
        "system_id": row["system_id"],
        "configuration_id": row["configuration_id"],
        "branch_id": row["branch_id"],
        # No branches here (inferred): nothing to resolve a revision or a name from.
        "branch_revision_id": None,
        "branch_name": None,
        "file_count": row["file_count"],
        "total_file_size": row["total_file_size"],
        "created": row["created"],
        "created_by_id": row["created_by_id"],
    }


def system_id_of(request: web.Request) -> str:
    """The path's system id, after checking the system exists (404 otherwise)."""
    return str(systems.row(registry(request).conn, path_id(request, "system_id"))["id"])


# -- outputs --------------------------------------------------------------------------------


@routes.post("/api/v3/systems/{system_id}/workflow_outputs")
async def create_output(request: web.Request) -> web.Response:
    reg = registry(request)
    by = principal(request).id
    system_id = system_id_of(request)
    new = await body(request, WorkflowOutputIn)
    doc = await build_revision(reg.blobs, new, new_id(), by)
    output_id = new_id()
    with transaction(reg.conn) as c:
        files.insert(c, doc, by, (output_id, "workflow_output"))
        workflows.insert_output(c, output_id, system_id, doc, by)
    # 200, not 201: the SDK's `create_workflow_output` parses the output only from a 200.
    return reply(output_wire(workflows.output(reg.conn, output_id)))


# -- entries --------------------------------------------------------------------------------


def _checked(new: WorkflowLogEntryIn) -> list[str]:
    """Refuse contradictory provenance and malformed output ids; returns the ids."""
    if new.branchless and (new.configuration_id or new.branch_id):
        raise validation_error(
            ["body", "branchless"],
            "a branchless entry has no provenance: leave out configuration_id and branch_id",
        )
    for field in ("configuration_id", "branch_id"):
        value = getattr(new, field)
        if value is not None and not is_uuid(value):
            raise validation_error(["body", field], f"{field} must be a UUID")
    ids = new.workflow_output_ids
    for i, oid in enumerate(ids):
        if not is_uuid(oid):
            raise validation_error(["body", "workflow_output_ids", i], "must be a UUID")
    if len(set(ids)) != len(ids):
        raise validation_error(["body", "workflow_output_ids"], "an output id is named twice")
    return ids


@routes.post(ENTRIES)
async def create_entry(request: web.Request) -> web.Response:
    reg = registry(request)
    system_id = system_id_of(request)
    new = await body(request, WorkflowLogEntryIn)
    ids = _checked(new)
    entry_id = new_id()
    with transaction(reg.conn) as c:
        workflows.insert_entry(
            c,
            {"id": entry_id, "system_id": system_id, "title": new.title, "status": new.status,
             "workflow_type": new.workflow_type, "configuration_id": new.configuration_id,
             "branch_id": new.branch_id, "created": now(), "created_by_id": principal(request).id},
        )  # fmt: skip
        workflows.take_outputs(c, system_id, entry_id, ids)
    return reply(entry_wire(workflows.entry(reg.conn, system_id, entry_id)), status=201)


@routes.get(ENTRIES + "/{entry_id}")
async def get_entry(request: web.Request) -> web.Response:
    conn = registry(request).conn
    row = workflows.entry(conn, system_id_of(request), path_id(request, "entry_id"))
    outputs = [output_wire(o) for o in workflows.outputs_of(conn, row["id"])]
    # A `WorkflowLogEntryDetailDto`: the entry with its outputs in the order it named them.
    return reply({**entry_wire(row), "workflow_outputs": outputs})


async def _set_archived(request: web.Request, archived: bool) -> sqlite3.Row:
    reg = registry(request)
    row = workflows.entry(reg.conn, system_id_of(request), path_id(request, "entry_id"))
    await optional_body(request, ArchiveIn)
    with transaction(reg.conn) as c:
        workflows.set_entry_archived(c, row["id"], archived)
    return workflows.entry(reg.conn, row["system_id"], row["id"])


@routes.delete(ENTRIES + "/{entry_id}")
async def archive_entry(request: web.Request) -> web.Response:
    await _set_archived(request, True)
    return web.Response(status=204)


@routes.post(ENTRIES + "/{entry_id}:restore")
async def restore_entry(request: web.Request) -> web.Response:
    return reply(entry_wire(await _set_archived(request, False)))
