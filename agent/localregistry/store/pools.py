"""Agent pools: the `pools` and `pool_members` tables."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from agent.localregistry.store import base
from agent.localregistry.store.base import Where, by_id, page, related
from agent.protocol.states import TERMINAL


@dataclass(frozen=True)
class Pool:
    """A pool's row, its memberships (oldest first), and, when asked, its unfinished jobs."""

    row: sqlite3.Row
    members: list[sqlite3.Row]
    unfinished: int | None = None


def row(conn: sqlite3.Connection, pool_id: str) -> sqlite3.Row:
    """The pool's row, or 404."""
    return by_id(conn, "pools", pool_id, "agent pool")


def _complete(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Pool]:
    members = related(conn, "pool_members", "pool_id", (r["id"] for r in rows), "created")
    return [Pool(r, members.get(r["id"], [])) for r in rows]


def read(conn: sqlite3.Connection, pool_id: str, *, with_count: bool = False) -> Pool:
    """The pool with its memberships (and its count of unfinished jobs), or 404."""
    pool = _complete(conn, [row(conn, pool_id)])[0]
    if not with_count:
        return pool
    terminal = tuple(s.value for s in TERMINAL)
    unfinished = conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE assigned_agent_pool_id = ? AND status NOT IN (?,?,?)",
        (pool_id, *terminal),
    ).fetchone()[0]
    return Pool(pool.row, pool.members, unfinished)


def listing(
    conn: sqlite3.Connection, archived: bool | None, page_no: int, size: int
) -> tuple[int, list[Pool]]:
    """One page of pools, oldest first, with the total matching."""
    where = Where()
    where.archived(archived)
    total, rows = page(conn, "pools", where, "created", page_no, size)
    return total, _complete(conn, rows)


def create(
    conn: sqlite3.Connection, pool_id: str, created: str, by: str, name: str, about: str | None
) -> None:
    """A new pool without members."""
    base.insert(
        conn,
        "pools",
        {"id": pool_id, "created": created, "created_by_id": by, "name": name,
         "description": about},
    )  # fmt: skip


def update(conn: sqlite3.Connection, pool_id: str, name: str, about: str | None) -> None:
    """Rename and redescribe the pool."""
    conn.execute("UPDATE pools SET name = ?, description = ? WHERE id = ?", (name, about, pool_id))


def set_archived(conn: sqlite3.Connection, pool_id: str, archived: bool) -> None:
    """Archive or restore the pool."""
    conn.execute("UPDATE pools SET archived = ? WHERE id = ?", (int(archived), pool_id))


def add_member(
    conn: sqlite3.Connection, member_id: str, pool_id: str, agent_id: str, created: str, by: str
) -> None:
    """Make the agent a member (once: adding a member again changes nothing)."""
    member = {"id": member_id, "pool_id": pool_id, "agent_id": agent_id, "created": created}
    base.insert(conn, "pool_members", {**member, "created_by_id": by}, or_ignore=True)


def remove_member(conn: sqlite3.Connection, pool_id: str, agent_id: str) -> bool:
    """Whether the agent was a member (and is no longer)."""
    gone = conn.execute(
        "DELETE FROM pool_members WHERE pool_id = ? AND agent_id = ?", (pool_id, agent_id)
    ).rowcount
    return bool(gone)


def is_member(conn: sqlite3.Connection, pool_id: str, agent_id: str) -> bool:
    """Whether the agent is a member of the pool."""
    found = conn.execute(
        "SELECT 1 FROM pool_members WHERE pool_id = ? AND agent_id = ?", (pool_id, agent_id)
    ).fetchone()
    return found is not None


def members_page(
    conn: sqlite3.Connection, pool_id: str, page_no: int, size: int
) -> tuple[int, list[sqlite3.Row]]:
    """One page of the pool's memberships, oldest first, with their number."""
    return page(
        conn, "pool_members", Where("pool_id = ?", args=[pool_id]), "created", page_no, size
    )
