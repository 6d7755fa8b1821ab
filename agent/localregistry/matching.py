"""Which function a submission names, and which jobs an agent may be offered.

A job is offered to an agent when it is Pending and not archived; when it is assigned to an
agent, only to that agent; when assigned to a pool, only to members of that (unarchived)
pool; and only when one of the agent's reported module versions publishes the job's
function, with the job's tool version and OS when the job names them (an OS also has to be
the agent's own `host_os`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.localregistry.credentials import OFFERABLE
from agent.localregistry.errors import NotFound
from agent.localregistry.wire import loads

_AVAILABLE = """
status = 'Pending' AND archived = 0
AND (assigned_agent_id IS NULL OR assigned_agent_id = :agent)
AND (assigned_agent_pool_id IS NULL OR assigned_agent_pool_id IN (
    SELECT m.pool_id FROM pool_members m JOIN pools p ON p.id = m.pool_id
    WHERE m.agent_id = :agent AND p.archived = 0))
AND EXISTS (
    SELECT 1 FROM agent_modules am JOIN functions f
      ON f.module_name = am.module_name AND f.module_version = am.module_version
    WHERE am.agent_id = :agent AND f.module_name = jobs.module_name
      AND f.name = jobs.function_name
      AND (jobs.tool_version IS NULL
           OR EXISTS (SELECT 1 FROM json_each(f.tool_versions) WHERE value = jobs.tool_version))
      AND (jobs.operating_system IS NULL
           OR (jobs.operating_system = :host_os AND EXISTS (
               SELECT 1 FROM json_each(f.operating_systems)
               WHERE value = jobs.operating_system))))
"""


def available_clause(agent_id: str, host_os: str | None) -> tuple[str, Any]:
    """A WHERE clause over `jobs` selecting what `agent_id` may claim, with its parameters.

    The agent's pools are one list subquery, read once per listing, not a correlated one run
    for each pending job: with 10,000 jobs waiting for another pool a listing's SQL took
    27.7 ms, now 11.0 ms (benchmarks/scale_bench.py's depth curve). It still walks every
    pending job (the status index); that is what is left of the growth with depth.
    """
    return _AVAILABLE + OFFERABLE, {"agent": agent_id, "host_os": host_os or ""}


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
        "provides it (an agent publishes its installed modules when it starts)"
    )
    raise NotFound(msg)
