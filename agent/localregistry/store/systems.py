"""Systems: the `systems` table (workflow outputs and log entries hang on one)."""

from __future__ import annotations

import sqlite3

from agent.localregistry.store import base
from agent.localregistry.store.base import Where, by_id, page


def row(conn: sqlite3.Connection, system_id: str) -> sqlite3.Row:
    """The system's row, or 404."""
    return by_id(conn, "systems", system_id, "system")


def create(
    conn: sqlite3.Connection, system_id: str, created: str, by: str, name: str, about: str
) -> None:
    """A new system."""
    base.insert(
        conn,
        "systems",
        {"id": system_id, "created": created, "created_by_id": by, "name": name,
         "description": about},
    )  # fmt: skip


def listing(
    conn: sqlite3.Connection,
    *,
    archived: bool | None,
    name: str | None,
    description: str | None,
    page_no: int,
    size: int,
) -> tuple[int, list[sqlite3.Row]]:
    """One page of systems, oldest first; `name` and `description` match as substrings in
    any case."""
    where = Where()
    where.archived(archived)
    where.add_if("instr(lower(name), lower(?)) > 0", name)
    where.add_if("instr(lower(description), lower(?)) > 0", description)
    return page(conn, "systems", where, "created", page_no, size)
