"""Agents: the `agents`, `agent_history` and `agent_modules` tables.

Histories are append-only (the current value is the last entry, spec §0); an agent's row
repeats its current host OS, capabilities, status and display name, which listings filter on
and jobs show. An agent is read with the most recent HISTORY_IN_BODY entries of each history
its wire shape carries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.localregistry.store import base
from agent.localregistry.store.base import Where, by_id, grouped, id_list, page, related
from agent.localregistry.wire import dumps, loads

HISTORY_IN_BODY = 50
IN_BODY = ("display_name", "information", "status", "modules")  # histories an Agent carries
INLINE_AUTH = "inline_auth"  # the capability of taking credentials sealed to its key


@dataclass(frozen=True)
class Agent:
    """An agent's row, its recent histories by kind (oldest first), and its pools."""

    row: sqlite3.Row
    history: dict[str, list[dict[str, Any]]]
    pools: list[str]


def row(conn: sqlite3.Connection, agent_id: str) -> sqlite3.Row:
    """The agent's row, or 404."""
    return by_id(conn, "agents", agent_id, "agent")


def _complete(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Agent]:
    """The agents of `rows` with their histories and pools: two queries for any number."""
    ids = [r["id"] for r in rows]
    # The last HISTORY_IN_BODY entries of each (agent, kind), oldest first.
    history = grouped(
        conn.execute(
            "SELECT agent_id, kind, doc FROM (SELECT agent_id, kind, doc, rowid AS r, "
            "ROW_NUMBER() OVER (PARTITION BY agent_id, kind ORDER BY rowid DESC) AS n "
            "FROM agent_history WHERE agent_id IN (SELECT value FROM json_each(?)) "
            "AND kind IN (SELECT value FROM json_each(?))) WHERE n <= ? ORDER BY r",
            (id_list(ids), id_list(IN_BODY), HISTORY_IN_BODY),
        ),
        "agent_id",
    )
    pools = related(conn, "pool_members", "agent_id", ids, "created")
    agents = []
    for r in rows:
        by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in IN_BODY}
        for h in history.get(r["id"], []):
            by_kind[h["kind"]].append(loads(h["doc"]))
        agents.append(Agent(r, by_kind, [p["pool_id"] for p in pools.get(r["id"], [])]))
    return agents


def read(conn: sqlite3.Connection, agent_id: str) -> Agent:
    """The agent, or 404."""
    return _complete(conn, [row(conn, agent_id)])[0]


def read_many(conn: sqlite3.Connection, agent_ids: Iterable[str]) -> dict[str, Agent]:
    """The agents with these ids (those that exist)."""
    rows = conn.execute(
        "SELECT * FROM agents WHERE id IN (SELECT value FROM json_each(?))",
        (id_list(set(agent_ids)),),
    ).fetchall()
    return {a.row["id"]: a for a in _complete(conn, rows)}


def listing(
    conn: sqlite3.Connection,
    *,
    archived: bool | None,
    status: str | None,
    host_os: str | None,
    module: str | None,
    page_no: int,
    size: int,
) -> tuple[int, list[Agent]]:
    """One page of agents, oldest first, with the total matching."""
    where = Where()
    where.archived(archived)
    where.add_if("status = ?", status)
    where.add_if("host_os = ?", host_os)
    where.add_if("id IN (SELECT agent_id FROM agent_modules WHERE module_name = ?)", module)
    total, rows = page(conn, "agents", where, "created", page_no, size)
    return total, _complete(conn, rows)


def _append(conn: sqlite3.Connection, agent_id: str, kind: str, doc: dict[str, Any]) -> None:
    entry = {"id": doc["id"], "agent_id": agent_id, "kind": kind, "created": doc["created"]}
    base.insert(conn, "agent_history", {**entry, "doc": dumps(doc)})


def register(conn: sqlite3.Connection, created: str, information: dict[str, Any]) -> None:
    """A new agent, with its first information entry."""
    base.insert(
        conn,
        "agents",
        {
            "id": information["agent_id"],
            "created": created,
            "created_by_id": information["created_by_id"],
            "host_os": information["host_os"],
            "capabilities": dumps(information["capabilities"]),
        },
    )
    _append(conn, information["agent_id"], "information", information)


def update_information(conn: sqlite3.Connection, information: dict[str, Any]) -> None:
    """Append an information entry; the row takes its host OS and capabilities."""
    agent_id = information["agent_id"]
    conn.execute(
        "UPDATE agents SET host_os = ?, capabilities = ? WHERE id = ?",
        (information["host_os"], dumps(information["capabilities"]), agent_id),
    )
    _append(conn, agent_id, "information", information)


def set_status(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Append a status entry; the row takes its name."""
    conn.execute("UPDATE agents SET status = ? WHERE id = ?", (doc["name"], doc["agent_id"]))
    _append(conn, doc["agent_id"], "status", doc)


def set_display_name(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Append a display name entry; the row takes the name."""
    conn.execute(
        "UPDATE agents SET display_name = ? WHERE id = ?", (doc["display_name"], doc["agent_id"])
    )
    _append(conn, doc["agent_id"], "display_name", doc)


def set_modules(
    conn: sqlite3.Connection, doc: dict[str, Any], modules: Iterable[tuple[str, str]]
) -> None:
    """Replace the agent's reported (module, version)s and append the modules entry."""
    agent_id = doc["agent_id"]
    conn.execute("DELETE FROM agent_modules WHERE agent_id = ?", (agent_id,))
    conn.executemany(
        "INSERT OR IGNORE INTO agent_modules(agent_id, module_name, module_version) "
        "VALUES (?, ?, ?)",
        [(agent_id, name, version) for name, version in modules],
    )
    _append(conn, agent_id, "modules", doc)


def add_public_key(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Append a public key entry (the latest one is the agent's key)."""
    _append(conn, doc["agent_id"], "public_key", doc)


def set_archived(conn: sqlite3.Connection, agent_id: str, archived: bool) -> None:
    """Archive or restore the agent."""
    conn.execute("UPDATE agents SET archived = ? WHERE id = ?", (int(archived), agent_id))


def last(conn: sqlite3.Connection, agent_id: str, kind: str) -> dict[str, Any] | None:
    """The latest entry of one of the agent's histories, if any."""
    found = conn.execute(
        "SELECT doc FROM agent_history WHERE agent_id = ? AND kind = ? ORDER BY rowid DESC LIMIT 1",
        (agent_id, kind),
    ).fetchone()
    return None if found is None else loads(found["doc"])


def status_page(
    conn: sqlite3.Connection, agent_id: str, page_no: int, size: int
) -> tuple[int, list[dict[str, Any]]]:
    """One page of the agent's whole status history, oldest first, with its length."""
    where = Where("agent_id = ?", "kind = 'status'", args=[agent_id])
    total, rows = page(conn, "agent_history", where, "rowid", page_no, size)
    return total, [loads(r["doc"]) for r in rows]


def public_key(conn: sqlite3.Connection, agent_id: str) -> str | None:
    """The agent's latest registered public key, if it can take credentials at all."""
    agent = conn.execute("SELECT capabilities FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if agent is None or INLINE_AUTH not in loads(agent["capabilities"] or "[]"):
        return None
    key = conn.execute(
        "SELECT doc FROM agent_history WHERE agent_id = ? AND kind = 'public_key' "
        "ORDER BY created DESC LIMIT 1",
        (agent_id,),
    ).fetchone()
    return None if key is None else str(loads(key["doc"])["public_key"])
