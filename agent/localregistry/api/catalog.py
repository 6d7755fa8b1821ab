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
        "status": {
            "id": new_id(),
            "created": created,
            "created_by_id": by,
            "name": "supported",
            "reason": None,
            "function_id": fid,
        },
        "tool_name": m.tool_key,
        "tool_display_name": m.tool_display_name,
        "tool_versions": [{"id": new_id(), "created": created, "tool_version": t} for t in tools],
        "operating_systems": [{"id": new_id(), "created": created, "name": o} for o in oses],
    }


def _fingerprint(m: Manifest) -> str:
    functions = {k: [v.model_dump() for v in vs] for k, vs in sorted(m.functions.items())}
    return hashlib.sha256(dumps(functions).encode()).hexdigest()


def _module_doc(conn: sqlite3.Connection, module_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM modules WHERE id = ?", (module_id,)).fetchone()
    if row is None:
        msg = f"no module with id {module_id}"
        raise NotFound(msg)
    doc: dict[str, Any] = loads(row["doc"])
    versions = conn.execute(
        "SELECT id FROM module_versions WHERE module_id = ? ORDER BY created", (module_id,)
    ).fetchall()
    doc["module_versions"] = [_version_doc(conn, v["id"]) for v in versions]
    return doc


def _version_doc(conn: sqlite3.Connection, version_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM module_versions WHERE id = ?", (version_id,)).fetchone()
    if row is None:
        msg = f"no module version with id {version_id}"
        raise NotFound(msg)
    doc: dict[str, Any] = loads(row["doc"])
    fns: dict[str, list[Any]] = {}
    for f in conn.execute(
        "SELECT doc FROM functions WHERE module_version_id = ? ORDER BY created", (version_id,)
    ):
        fd = loads(f["doc"])
        fns.setdefault(fd["name"], []).append(fd)
    doc["functions"] = fns
    return doc


def publish(conn: sqlite3.Connection, m: Manifest, by: str) -> str:
    """Store a manifest's module version and functions; returns the module id."""
    key, created = m.key(), now()
    fingerprint = _fingerprint(m)
    existing = conn.execute(
        "SELECT module_id, doc FROM module_versions WHERE module_name = ? AND module_version = ?",
        (key, m.module_version),
    ).fetchone()
    if existing is not None:
        if loads(existing["doc"]).get("check_sum") != fingerprint:
            msg = (
                f"{key} {m.module_version} is already published with other functions; "
                "publish a new module_version"
            )
            raise Conflict(msg)
        return str(existing["module_id"])
    row = conn.execute("SELECT id FROM modules WHERE name = ?", (key,)).fetchone()
    module_id = row["id"] if row else new_id()
    if row is None:
        conn.execute(
            "INSERT INTO modules(id, name, created, doc) VALUES (?, ?, ?, ?)",
            (
                module_id,
                key,
                created,
                dumps(
                    {
                        "id": module_id,
                        "created": created,
                        "name": key,
                        "module_type": m.module_type,
                        "internal": m.internal,
                        "tool": None,
                    }
                ),
            ),
        )
    version_id = new_id()
    conn.execute(
        "INSERT INTO module_versions(id, module_id, module_name, module_version, created, doc) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            version_id,
            module_id,
            key,
            m.module_version,
            created,
            dumps(
                {
                    "id": version_id,
                    "created": created,
                    "module_version": m.module_version,
                    "check_sum": fingerprint,
                    "agent_version": m.agent_version or "*",
                    "module_id": module_id,
                    "status": {
                        "id": new_id(),
                        "created": created,
                        "created_by_id": by,
                        "name": "supported",
                        "reason": None,
                        "module_version_id": version_id,
                    },
                    "module_display_name": m.module_display_name,
                    "tool_display_name": m.tool_display_name,
                }
            ),
        ),
    )
    for name, variants in m.functions.items():
        for v in variants:
            schema = _schema_doc(v.function_schema, created)
            conn.execute(
                "INSERT INTO function_schemas(id, doc) VALUES (?, ?)", (schema["id"], dumps(schema))
            )
            fd = _function_doc(m, name, v, schema["id"], created, by)
            conn.execute(
                "INSERT INTO functions(id, module_version_id, name, module_name, module_version, "
                "tool_versions, operating_systems, created, doc) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    fd["id"],
                    version_id,
                    name,
                    key,
                    m.module_version,
                    dumps([t["tool_version"] for t in fd["tool_versions"]]),
                    dumps([o["name"] for o in fd["operating_systems"]]),
                    created,
                    dumps(fd),
                ),
            )
    return str(module_id)


@routes.post("/api/v2/modules")
async def publish_module(request: web.Request) -> web.Response:
    reg = registry(request)
    manifest = await body(request, Manifest)
    if manifest.module_key is None and manifest.module_name is None:
        raise validation_error(["body", "module_key"], "module_key is required")
    with transaction(reg.conn) as c:
        module_id = publish(c, manifest, principal(request).id)
    return reply(_module_doc(reg.conn, module_id))


@routes.get("/api/v2/modules")
async def list_modules(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    total = conn.execute("SELECT COUNT(*) FROM modules").fetchone()[0]
    rows = conn.execute(
        "SELECT id FROM modules ORDER BY created LIMIT ? OFFSET ?", (size, (page_no - 1) * size)
    ).fetchall()
    return reply(page([_module_doc(conn, r["id"]) for r in rows], total, page_no, size))


@routes.get("/api/v2/modules/versions/functions")
async def list_functions(request: web.Request) -> web.Response:
    conn = registry(request).conn
    page_no, size = paging(request)
    where, args = "1 = 1", []
    name = query_str(request, "name")
    if name is not None:
        where, args = "name = ?", [name]
    total = conn.execute(f"SELECT COUNT(*) FROM functions WHERE {where}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT doc FROM functions WHERE {where} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*args, size, (page_no - 1) * size],
    ).fetchall()
    return reply(page([loads(r["doc"]) for r in rows], total, page_no, size))


@routes.get("/api/v2/modules/versions/functions/{function_id}")
async def get_function(request: web.Request) -> web.Response:
    fid = path_id(request, "function_id")
    row = (
        registry(request).conn.execute("SELECT doc FROM functions WHERE id = ?", (fid,)).fetchone()
    )
    if row is None:
        msg = f"no function with id {fid}"
        raise NotFound(msg)
    return reply(loads(row["doc"]))


@routes.get("/api/v2/modules/versions/function_schemas/{schema_id}")
async def get_function_schema(request: web.Request) -> web.Response:
    sid = path_id(request, "schema_id")
    conn = registry(request).conn
    row = conn.execute("SELECT doc FROM function_schemas WHERE id = ?", (sid,)).fetchone()
    if row is None:
        msg = f"no function schema with id {sid}"
        raise NotFound(msg)
    return reply(loads(row["doc"]))


@routes.get("/api/v2/modules/versions/{version_id}")
async def get_module_version(request: web.Request) -> web.Response:
    conn = registry(request).conn
    return reply(_version_doc(conn, path_id(request, "version_id")))


@routes.get("/api/v2/modules/{module_id}")
async def get_module(request: web.Request) -> web.Response:
    return reply(_module_doc(registry(request).conn, path_id(request, "module_id")))
