"""Module publishing and the function catalogue: `/api/v2/modules...`.

Publishing a manifest (`POST /api/v2/modules`, as `stari client publish` does on the platform)
is how the registry learns which functions exist, so that a job can name one and
`available_jobs` can match it to agents whose reported modules provide it. Re-publishing the
same module version with the same functions is a no-op; with different functions it is a 409.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from aiohttp import web

from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, NotFound, validation_error
from agent.localregistry.http import body, paging, path_id, query_str, reply
from agent.localregistry.state import principal, registry
from agent.localregistry.store import catalog
from agent.localregistry.wire import dumps, loads, new_id, now, page
from agent.protocol.manifest import FunctionSchema, FunctionVariant, Manifest

routes = web.RouteTableDef()


def _schema_doc(schema: FunctionSchema, created: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "created": created,
        "inputs": [
            {
                "id": new_id(),
                "created": created,
                "key": key,
                "type": i.type,
                "validation_types": i.validation_types,
                "optional": bool(i.optional),
            }
            for key, i in schema.inputs.items()
        ],
        "outputs": [
            {
                "id": new_id(),
                "created": created,
                "name": o.name,
                "type": o.type,
                "required": o.required,
                "upload_as": o.upload_as,
                "version_of": o.version_of,
            }
            for o in schema.outputs
        ],
    }


def _supported(created: str, by: str, owner_key: str, owner_id: str) -> dict[str, Any]:
    """The `supported` status of a new function or module version."""
    return {
        "id": new_id(),
        "created": created,
        "created_by_id": by,
        "name": "supported",
        "reason": None,
        owner_key: owner_id,
    }


def _function_doc(
    m: Manifest, name: str, v: FunctionVariant, schema_id: str, created: str, by: str
) -> dict[str, Any]:
    fid = new_id()
    tools = v.tool_versions or m.tool_versions or []
    oses = v.operating_systems or m.operating_systems or []
    return {
        "id": fid,
        "created": created,
        "name": name,
        "version": m.module_version,
        "module_name": m.key(),
        "module_version": m.module_version,
        "entrypoint": v.entrypoint,
        "function_schema": schema_id,
        "run_command": v.run_command,
        "created_by_id": by,
        "status": _supported(created, by, "function_id", fid),
        "tool_name": m.tool_key,
        "tool_display_name": m.tool_display_name,
        "tool_versions": [{"id": new_id(), "created": created, "tool_version": t} for t in tools],
        "operating_systems": [{"id": new_id(), "created": created, "name": o} for o in oses],
    }


def _fingerprint(m: Manifest) -> str:
    functions = {k: [v.model_dump() for v in vs] for k, vs in sorted(m.functions.items())}
    return hashlib.sha256(dumps(functions).encode()).hexdigest()


def version_wire(version: catalog.Version) -> dict[str, Any]:
    """The wire `ModuleVersion`: its document with its functions by name."""
    functions: dict[str, list[Any]] = {}
    for f in version.functions:
        functions.setdefault(f["name"], []).append(f)
    return {**version.doc, "functions": functions}


def module_wire(module: catalog.Module) -> dict[str, Any]:
    """The wire `Module` with all its versions."""
    return {**module.doc, "module_versions": [version_wire(v) for v in module.versions]}


def _module_doc(m: Manifest, module_id: str, created: str) -> dict[str, Any]:
    return {
        "id": module_id,
        "created": created,
        "name": m.key(),
        "module_type": m.module_type,
        "internal": m.internal,
        "tool": None,
    }


def _version_doc(
    m: Manifest, module_id: str, fingerprint: str, created: str, by: str
) -> dict[str, Any]:
    version_id = new_id()
    return {
        "id": version_id,
        "created": created,
        "module_version": m.module_version,
        "check_sum": fingerprint,
        "agent_version": m.agent_version or "*",
        "module_id": module_id,
        "status": _supported(created, by, "module_version_id", version_id),
        "module_display_name": m.module_display_name,
        "tool_display_name": m.tool_display_name,
    }


def publish(conn: sqlite3.Connection, m: Manifest, by: str) -> str:
    """Store a manifest's module version and functions; returns the module id."""
    key, created = m.key(), now()
    fingerprint = _fingerprint(m)
    existing = catalog.find_version(conn, key, m.module_version)
    if existing is not None:
        if loads(existing["doc"]).get("check_sum") != fingerprint:
            msg = (
                f"{key} {m.module_version} is already published with other functions; "
                "publish a new module_version"
            )
            raise Conflict(msg)
        return str(existing["module_id"])
    module_id = catalog.module_id(conn, key)
    if module_id is None:
        module_id = new_id()
        catalog.insert_module(conn, _module_doc(m, module_id, created))
    version = _version_doc(m, module_id, fingerprint, created, by)
    catalog.insert_version(conn, key, version)
    for name, variants in m.functions.items():
        for v in variants:
            schema = _schema_doc(v.function_schema, created)
            fd = _function_doc(m, name, v, schema["id"], created, by)
            catalog.insert_function(conn, version["id"], fd, schema)
    return module_id


@routes.post("/api/v2/modules")
async def publish_module(request: web.Request) -> web.Response:
    reg = registry(request)
    manifest = await body(request, Manifest)
    if manifest.module_key is None and manifest.module_name is None:
        raise validation_error(["body", "module_key"], "module_key is required")
    with transaction(reg.conn) as c:
        module_id = publish(c, manifest, principal(request).id)
    return reply(module_wire(catalog.module(reg.conn, module_id)))


@routes.get("/api/v2/modules")
async def list_modules(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    total, found = catalog.modules_page(registry(request).conn, page_no, size)
    return reply(page([module_wire(m) for m in found], total, page_no, size))


@routes.get("/api/v2/modules/versions/functions")
async def list_functions(request: web.Request) -> web.Response:
    page_no, size = paging(request)
    name = query_str(request, "name")
    total, docs = catalog.functions_page(registry(request).conn, name, page_no, size)
    return reply(page(docs, total, page_no, size))


@routes.get("/api/v2/modules/versions/functions/{function_id}")
async def get_function(request: web.Request) -> web.Response:
    fid = path_id(request, "function_id")
    doc = catalog.function(registry(request).conn, fid)
    if doc is None:
        msg = f"no function with id {fid}"
        raise NotFound(msg)
    return reply(doc)


@routes.get("/api/v2/modules/versions/function_schemas/{schema_id}")
async def get_function_schema(request: web.Request) -> web.Response:
    sid = path_id(request, "schema_id")
    doc = catalog.function_schema(registry(request).conn, sid)
    if doc is None:
        msg = f"no function schema with id {sid}"
        raise NotFound(msg)
    return reply(doc)


@routes.get("/api/v2/modules/versions/{version_id}")
async def get_module_version(request: web.Request) -> web.Response:
    version = catalog.version(registry(request).conn, path_id(request, "version_id"))
    return reply(version_wire(version))


@routes.get("/api/v2/modules/{module_id}")
async def get_module(request: web.Request) -> web.Response:
    module = catalog.module(registry(request).conn, path_id(request, "module_id"))
    return reply(module_wire(module))
