"""The function catalogue: `modules`, `module_versions`, `functions`, `function_schemas`.

Each row keeps the document it answers with (built when the module was published); the
columns beside it are what lookups match on.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.localregistry.errors import NotFound
from agent.localregistry.store import base
from agent.localregistry.store.base import id_list, related
from agent.localregistry.wire import dumps, loads


@dataclass(frozen=True)
class Version:
    """A module version's document and its functions' documents, oldest first."""

    doc: dict[str, Any]
    functions: list[dict[str, Any]]


@dataclass(frozen=True)
class Module:
    """A module's document and its versions, oldest first."""

    doc: dict[str, Any]
    versions: list[Version]


# -- publishing -------------------------------------------------------------------------------


def find_version(conn: sqlite3.Connection, module_name: str, version: str) -> sqlite3.Row | None:
    """The published version's `module_id` and `doc`, if it was published."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT module_id, doc FROM module_versions WHERE module_name = ? AND module_version = ?",
        (module_name, version),
    ).fetchone()


def module_version_id(conn: sqlite3.Connection, module_name: str, version: str) -> str | None:
    """The id of a published module version, if it was published."""
    found = conn.execute(
        "SELECT id FROM module_versions WHERE module_name = ? AND module_version = ?",
        (module_name, version),
    ).fetchone()
    return None if found is None else str(found["id"])


def module_id(conn: sqlite3.Connection, name: str) -> str | None:
    """The id of the module called `name`, if there is one."""
    found = conn.execute("SELECT id FROM modules WHERE name = ?", (name,)).fetchone()
    return None if found is None else str(found["id"])


def insert_module(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """A new module (its versions come with `insert_version`)."""
    base.insert(
        conn,
        "modules",
        {"id": doc["id"], "name": doc["name"], "created": doc["created"], "doc": dumps(doc)},
    )


def insert_version(conn: sqlite3.Connection, module_name: str, doc: dict[str, Any]) -> None:
    """A new version of a module."""
    base.insert(
        conn,
        "module_versions",
        {"id": doc["id"], "module_id": doc["module_id"], "module_name": module_name,
         "module_version": doc["module_version"], "created": doc["created"], "doc": dumps(doc)},
    )  # fmt: skip


def insert_function(
    conn: sqlite3.Connection, version_id: str, doc: dict[str, Any], schema: dict[str, Any]
) -> None:
    """A function of a module version, with its schema."""
    base.insert(conn, "function_schemas", {"id": schema["id"], "doc": dumps(schema)})
    base.insert(
        conn,
        "functions",
        {
            "id": doc["id"],
            "module_version_id": version_id,
            "name": doc["name"],
            "module_name": doc["module_name"],
            "module_version": doc["module_version"],
            "tool_versions": dumps([t["tool_version"] for t in doc["tool_versions"]]),
            "operating_systems": dumps([o["name"] for o in doc["operating_systems"]]),
            "created": doc["created"],
            "doc": dumps(doc),
        },
    )


# -- reading ----------------------------------------------------------------------------------


def _versions(conn: sqlite3.Connection, where: str, arg: str) -> list[Version]:
    """Module versions (`where` one `?`) with their functions: two queries for any number."""
    rows = conn.execute(
        f"SELECT id, module_id, doc FROM module_versions WHERE {where} ORDER BY created",  # noqa: S608
        (arg,),
    ).fetchall()
    functions = related(conn, "functions", "module_version_id", [r["id"] for r in rows], "created")
    return [
        Version(loads(r["doc"]), [loads(f["doc"]) for f in functions.get(r["id"], [])])
        for r in rows
    ]


def version(conn: sqlite3.Connection, version_id: str) -> Version:
    """The module version, or 404."""
    found = _versions(conn, "id = ?", version_id)
    if not found:
        msg = f"no module version with id {version_id}"
        raise NotFound(msg)
    return found[0]


def _modules(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Module]:
    versions = _versions(
        conn, "module_id IN (SELECT value FROM json_each(?))", id_list(r["id"] for r in rows)
    )
    by_module: dict[str, list[Version]] = {}
    for v in versions:
        by_module.setdefault(v.doc["module_id"], []).append(v)
    return [Module(loads(r["doc"]), by_module.get(r["id"], [])) for r in rows]


def module(conn: sqlite3.Connection, module_id: str) -> Module:
    """The module with all its versions, or 404."""
    rows = conn.execute("SELECT id, doc FROM modules WHERE id = ?", (module_id,)).fetchall()
    if not rows:
        msg = f"no module with id {module_id}"
        raise NotFound(msg)
    return _modules(conn, rows)[0]


def modules_page(conn: sqlite3.Connection, page_no: int, size: int) -> tuple[int, list[Module]]:
    """One page of modules, oldest first, with the total."""
    total = conn.execute("SELECT COUNT(*) FROM modules").fetchone()[0]
    rows = conn.execute(
        "SELECT id, doc FROM modules ORDER BY created LIMIT ? OFFSET ?",
        (size, (page_no - 1) * size),
    ).fetchall()
    return total, _modules(conn, rows)


def functions_page(
    conn: sqlite3.Connection, name: str | None, page_no: int, size: int
) -> tuple[int, list[dict[str, Any]]]:
    """One page of function documents (those called `name` when given), oldest first."""
    where, args = ("1 = 1", []) if name is None else ("name = ?", [name])
    total = conn.execute(f"SELECT COUNT(*) FROM functions WHERE {where}", args).fetchone()[0]  # noqa: S608
    rows = conn.execute(
        f"SELECT doc FROM functions WHERE {where} ORDER BY created LIMIT ? OFFSET ?",  # noqa: S608
        [*args, size, (page_no - 1) * size],
    ).fetchall()
    return total, [loads(r["doc"]) for r in rows]


def function(conn: sqlite3.Connection, function_id: str) -> dict[str, Any] | None:
    """A function's document."""
    found = conn.execute("SELECT doc FROM functions WHERE id = ?", (function_id,)).fetchone()
    return None if found is None else loads(found["doc"])


def function_schema(conn: sqlite3.Connection, schema_id: str | None) -> dict[str, Any] | None:
    """A function schema's document."""
    found = conn.execute("SELECT doc FROM function_schemas WHERE id = ?", (schema_id,))
    row = found.fetchone()
    return None if row is None else loads(row["doc"])


def resolve_function(
    conn: sqlite3.Connection,
    *,
    name: str,
    module_name: str | None,
    version: str | None,
    tool_name: str | None,
    tool_version: str | None,
    os_name: str | None,
) -> dict[str, Any]:
    """The newest published function version matching a submission, or 404."""
    where = ["name = :name"]
    if module_name:
        where.append("module_name = :module")
    if version:
        where.append("module_version = :version")
    if tool_version:
        where.append("EXISTS (SELECT 1 FROM json_each(tool_versions) WHERE value = :tool_version)")
    if os_name:
        where.append("EXISTS (SELECT 1 FROM json_each(operating_systems) WHERE value = :os)")
    rows = conn.execute(
        f"SELECT doc FROM functions WHERE {' AND '.join(where)} ORDER BY created DESC",  # noqa: S608
        {
            "name": name,
            "module": module_name,
            "version": version,
            "tool_version": tool_version,
            "os": os_name,
        },
    ).fetchall()
    for row in rows:
        doc: dict[str, Any] = loads(row["doc"])
        if tool_name is None or doc.get("tool_name") == tool_name:
            return doc
    msg = (
        f"no published function {name!r} matches this submission; publish the module that "
        "provides it (`istari-agent modules publish PATH`, or an agent started with "
        "publish_modules = true)"
    )
    raise NotFound(msg)
