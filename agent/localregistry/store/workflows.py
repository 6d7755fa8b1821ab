"""External workflow logs: the `workflow_outputs` and `workflow_entries` tables.

An output is read with its revision's document; an entry with the count and total size of
the outputs it owns, computed in the same query for a whole page of entries.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.localregistry.errors import BadRequest, NotFound
from agent.localregistry.store import base
from agent.localregistry.store.base import Where

_OUTPUT = (
    "SELECT o.*, r.doc AS revision FROM workflow_outputs o JOIN revisions r "
    "ON r.id = o.revision_id WHERE {where}"
)
_ENTRY = (
    "SELECT e.*, "
    "(SELECT COUNT(*) FROM workflow_outputs o WHERE o.entry_id = e.id) AS file_count, "
    "(SELECT COALESCE(SUM(o.size), 0) FROM workflow_outputs o WHERE o.entry_id = e.id) "
    "AS total_file_size FROM workflow_entries e WHERE {where}"
)


def insert_output(
    conn: sqlite3.Connection, output_id: str, system_id: str, revision: dict[str, Any], by: str
) -> None:
    """A new output of the system: the file whose (first) revision is `revision`."""
    base.insert(
        conn,
        "workflow_outputs",
        {"id": output_id, "system_id": system_id, "file_id": revision["file_id"],
         "revision_id": revision["id"], "size": revision["size"],
         "created": revision["created"], "created_by_id": by},
    )  # fmt: skip


def output(conn: sqlite3.Connection, output_id: str) -> sqlite3.Row:
    """The output's row with its `revision` document (JSON text)."""
    return conn.execute(  # type: ignore[no-any-return]
        _OUTPUT.format(where="o.id = ?"), (output_id,)
    ).fetchone()


def outputs_of(conn: sqlite3.Connection, entry_id: str) -> list[sqlite3.Row]:
    """The entry's outputs, in the order it named them, each with its `revision`."""
    return conn.execute(
        _OUTPUT.format(where="o.entry_id = ?") + " ORDER BY o.position", (entry_id,)
    ).fetchall()


def insert_entry(conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
    """A new log entry (`entry` holds its columns)."""
    base.insert(conn, "workflow_entries", entry)


def take_outputs(conn: sqlite3.Connection, system_id: str, entry_id: str, ids: list[str]) -> None:
    """Give the outputs to the entry; inside the transaction, so two entries cannot share one."""
    for position, oid in enumerate(ids):
        found = conn.execute(
            "SELECT entry_id FROM workflow_outputs WHERE id = ? AND system_id = ?",
            (oid, system_id),
        ).fetchone()
        if found is None:
            msg = f"no workflow output with id {oid} in system {system_id}"
            raise NotFound(msg)
        if found["entry_id"] is not None:
            # 400 rather than 409: the SDK's response map for this route lists 400, not 409.
            msg = (
                f"workflow output {oid} already belongs to entry {found['entry_id']}; "
                "an entry owns its outputs, so each output goes to one entry"
            )
            raise BadRequest(msg)
        conn.execute(
            "UPDATE workflow_outputs SET entry_id = ?, position = ? WHERE id = ?",
            (entry_id, position, oid),
        )


def entry(conn: sqlite3.Connection, system_id: str, entry_id: str) -> sqlite3.Row:
    """The entry's row (with `file_count` and `total_file_size`), or 404 (also when it
    belongs to another system)."""
    found = conn.execute(
        _ENTRY.format(where="e.id = ? AND e.system_id = ?"), (entry_id, system_id)
    ).fetchone()
    if found is None:
        msg = f"no workflow log entry with id {entry_id} in system {system_id}"
        raise NotFound(msg)
    return found  # type: ignore[no-any-return]


def set_entry_archived(conn: sqlite3.Connection, entry_id: str, archived: bool) -> None:
    """Archive or restore the entry."""
    conn.execute("UPDATE workflow_entries SET archived = ? WHERE id = ?", (int(archived), entry_id))


def _add_filter(where: Where, column: str, values: list[str], *, substring: bool) -> None:
    """One repeated filter: plain values are alternatives, `!` values are all excluded."""
    wanted = [v for v in values if not v.startswith("!")]
    excluded = [v[1:] for v in values if v.startswith("!")]
    # Columns come from this module, never from the request.
    if substring:
        test = f"instr(lower(COALESCE({column}, '')), lower(?)) > 0"
    else:
        test = f"COALESCE({column}, '') = ?"
    if wanted:
        where.clauses.append("(" + " OR ".join([test] * len(wanted)) + ")")
        where.args.extend(wanted)
    for value in excluded:
        where.clauses.append(f"NOT ({test})")
        where.args.append(value)


def entries(
    conn: sqlite3.Connection,
    system_id: str,
    *,
    archived: bool | None,
    filters: dict[str, list[str]],
    with_total: bool,
    before: int | None,
    limit: int,
) -> tuple[int | None, list[sqlite3.Row]]:
    """Up to `limit` of the system's entries, newest first, positioned before `before` (a
    `seq`) when given, and the number matching in all (when `with_total`).

    `filters` are `status`, `branch_id` (exact) and `title` (a substring in any case).
    """
    where = Where("system_id = ?", args=[system_id])
    where.archived(archived)
    for column in ("status", "branch_id", "title"):
        _add_filter(where, column, filters.get(column, []), substring=column == "title")
    total = None
    if with_total:
        sql = f"SELECT COUNT(*) FROM workflow_entries WHERE {where.sql}"  # noqa: S608
        total = int(conn.execute(sql, where.args).fetchone()[0])
    if before is not None:
        where.add("seq < ?", before)
    rows = conn.execute(
        _ENTRY.format(where=where.sql) + " ORDER BY seq DESC LIMIT ?", [*where.args, limit]
    ).fetchall()
    return total, rows
