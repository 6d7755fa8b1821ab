"""What the store modules share: WHERE clauses built from filters, id lists, pages of rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from agent.localregistry.errors import NotFound

Params = list[Any] | dict[str, Any]


def id_list(ids: Iterable[str]) -> str:
    """One parameter holding all these ids, for `column IN (SELECT value FROM json_each(?))`:
    a page's related rows in one query, whatever the page's size."""
    return json.dumps(list(ids))


def by_id(conn: sqlite3.Connection, table: str, row_id: str, what: str) -> sqlite3.Row:
    """The row of `table` with this id, or 404 naming it `what`."""
    found = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()  # noqa: S608
    if found is None:
        msg = f"no {what} with id {row_id}"
        raise NotFound(msg)
    return found  # type: ignore[no-any-return]


def insert(
    conn: sqlite3.Connection, table: str, values: dict[str, Any], *, or_ignore: bool = False
) -> int:
    """Insert one row of `values` (column names from the caller's code, never a request);
    how many rows were inserted (0 when ignored)."""
    columns = ", ".join(values)
    marks = ", ".join(f":{c}" for c in values)
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    sql = f"{verb} INTO {table}({columns}) VALUES ({marks})"
    return conn.execute(sql, values).rowcount


def related(
    conn: sqlite3.Connection, table: str, column: str, ids: Iterable[str], order: str
) -> dict[str, list[sqlite3.Row]]:
    """The rows of `table` whose `column` is one of `ids`, by that value, each group in
    `order`: what a whole page of rows names, in one query."""
    rows = conn.execute(
        f"SELECT * FROM {table} WHERE {column} IN (SELECT value FROM json_each(?)) "  # noqa: S608
        f"ORDER BY {order}",
        (id_list(ids),),
    )
    return grouped(rows, column)


def grouped(rows: Iterable[sqlite3.Row], key: str) -> dict[str, list[sqlite3.Row]]:
    """Rows by the value of their `key` column, each group in the rows' order."""
    groups: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


class Where:
    """A WHERE clause built from optional filters, with its positional parameters."""

    def __init__(self, *clauses: str, args: list[Any] | None = None) -> None:
        self.clauses = list(clauses) or ["1 = 1"]
        self.args: list[Any] = list(args or [])

    def add(self, clause: str, value: Any) -> None:
        """Add `clause` (one `?`) with its value."""
        self.clauses.append(clause)
        self.args.append(value)

    def add_if(self, clause: str, value: Any) -> None:
        """Add `clause` (one `?`) with its value, unless the value is None (no filter)."""
        if value is not None:
            self.add(clause, value)

    def archived(self, archived: bool | None) -> None:
        """Only archived rows, only active ones, or (None) both."""
        if archived is not None:
            self.add("archived = ?", int(archived))

    @property
    def sql(self) -> str:
        """The clauses joined with AND."""
        return " AND ".join(self.clauses)


def count(conn: sqlite3.Connection, table: str, where: str, args: Params) -> int:
    """How many rows of `table` match `where`."""
    return int(conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0])  # noqa: S608


def limited(args: Params, page_no: int, size: int) -> tuple[str, Params]:
    """The `LIMIT ... OFFSET ...` of a page and the parameters with its values appended."""
    offset = (page_no - 1) * size
    if isinstance(args, dict):
        return "LIMIT :limit OFFSET :offset", {**args, "limit": size, "offset": offset}
    return "LIMIT ? OFFSET ?", [*args, size, offset]


def page(
    conn: sqlite3.Connection,
    table: str,
    where: Where,
    order: str,
    page_no: int,
    size: int,
) -> tuple[int, list[sqlite3.Row]]:
    """The total and one page of `table`'s rows matching `where`, in `order`."""
    tail, params = limited(where.args, page_no, size)
    rows = conn.execute(
        f"SELECT * FROM {table} WHERE {where.sql} ORDER BY {order} {tail}",  # noqa: S608
        params,
    ).fetchall()
    return count(conn, table, where.sql, where.args), rows
