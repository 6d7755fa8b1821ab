"""Jobs: the `jobs` and `job_status` tables, status moves (the claim among them), offers.

Every status move runs the shared state table (`agent.protocol.states`) inside the caller's
immediate transaction with a guarded UPDATE, so of two agents claiming the same Pending job
exactly one gets 200 and the other 409, whatever the interleaving.

A job is read with its function's document, the display name of the agent holding it, its
status history and its parameters file: three queries for one job or for a whole page of
them (and one more for the page's total).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from agent.localregistry.errors import Conflict, NotFound
from agent.localregistry.store import agents, base, credentials, files, pools
from agent.localregistry.store.base import Params, Where, by_id, count, limited, related
from agent.localregistry.wire import new_id, now
from agent.protocol.states import ACTIVE, AGENT_ONLY, JobStatus, can_move, predecessors

# What an agent is offered: a Pending, unarchived job; when assigned to an agent, only to
# that agent; when assigned to a pool, only to members of that (unarchived) pool; and only
# when one of the agent's reported module versions publishes the job's function, with the
# job's tool version and OS when the job names them (an OS also has to be the agent's own
# `host_os`). Jobs carrying credentials go only to agents that can open them (OFFERABLE).
# An agent whose status is Paused (paused by a person, held back, draining or stopped) is
# offered nothing. *Decision:* its claim is still taken: the status is the agent's own
# report, a step behind its decision to claim again, and a claim is that decision.
_AVAILABLE = """
status = 'Pending' AND archived = 0
AND NOT EXISTS (SELECT 1 FROM agents pa WHERE pa.id = :agent AND pa.status = 'Paused')
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

# A page of jobs (the inner SELECT, exactly as filtered and ordered), then what each job's
# wire shape names beside its row: joined to the page, not looked up per job.
_PAGE = """
SELECT j.*, f.doc AS function_doc, a.display_name AS holder_name
FROM ({inner}) j JOIN functions f ON f.id = j.function_id
LEFT JOIN agents a ON a.id = j.claimed_by
ORDER BY j.created, j.id
"""

Assignment = Literal["assigned_agent_id", "assigned_agent_pool_id"]


@dataclass(frozen=True)
class Job:
    """A job's row (with `function_doc` and `holder_name`), status history and file."""

    row: sqlite3.Row
    statuses: list[sqlite3.Row]
    file: files.File


def available_clause(agent_id: str, host_os: str | None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause over `jobs` selecting what `agent_id` may claim, with its parameters.

    The agent's pools are one list subquery, read once per listing, not a correlated one run
    for each pending job: with 10,000 jobs waiting for another pool a listing's SQL took
    27.7 ms, now 11.0 ms (benchmarks/scale_bench.py's depth curve). It still walks every
    pending job (the status index); that is what is left of the growth with depth.
    """
    return _AVAILABLE + credentials.OFFERABLE, {"agent": agent_id, "host_os": host_os or ""}


def row(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
    """The job's row, or 404."""
    return by_id(conn, "jobs", job_id, "job")


def status_of(conn: sqlite3.Connection, job_id: str) -> JobStatus | None:
    """The job's status, if the job exists."""
    found = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if found is None else JobStatus(found["status"])


def _read(conn: sqlite3.Connection, where: str, params: Params, tail: str = "") -> list[Job]:
    inner = f"SELECT * FROM jobs WHERE {where} ORDER BY created, id {tail}"  # noqa: S608
    rows = conn.execute(_PAGE.format(inner=inner), params).fetchall()
    if not rows:
        return []
    statuses = related(conn, "job_status", "job_id", (r["id"] for r in rows), "job_id, seq")
    found = files.read_many(conn, (r["file_id"] for r in rows))
    return [Job(r, statuses.get(r["id"], []), found[r["file_id"]]) for r in rows]


def read(conn: sqlite3.Connection, job_id: str) -> Job:
    """The job, or 404."""
    found = _read(conn, "id = ?", [job_id])
    if not found:
        msg = f"no job with id {job_id}"
        raise NotFound(msg)
    return found[0]


def _page(
    conn: sqlite3.Connection, where: str, args: Params, page_no: int, size: int
) -> tuple[int, list[Job]]:
    tail, params = limited(args, page_no, size)
    return count(conn, "jobs", where, args), _read(conn, where, params, tail)


def listing(
    conn: sqlite3.Connection,
    *,
    archived: bool | None,
    model_id: str | None = None,
    pool_id: str | None = None,
    status: JobStatus | None = None,
    name: str | None = None,
    page_no: int,
    size: int,
) -> tuple[int, list[Job]]:
    """One page of jobs, oldest first, with the total matching the filters given."""
    where = Where()
    where.archived(archived)
    where.add_if("model_id = ?", model_id)
    where.add_if("assigned_agent_pool_id = ?", pool_id)
    where.add_if("status = ?", status.value if status else None)
    where.add_if("instr(lower(function_name), lower(?)) > 0", name or None)
    return _page(conn, where.sql, where.args, page_no, size)


def available(
    conn: sqlite3.Connection, agent_id: str, host_os: str | None, page_no: int, size: int
) -> tuple[int, list[Job]]:
    """One page of the jobs `agent_id` may claim, oldest first, with their number."""
    where, args = available_clause(agent_id, host_os)
    return _page(conn, where, args, page_no, size)


def submit(
    conn: sqlite3.Connection,
    job_id: str,
    by: str,
    function: dict[str, Any],
    **columns: str | None,
) -> None:
    """A new Pending job (history: Created, Pending) running `function`; `columns` are
    model_id, file_id, tool_version, operating_system, assigned_agent_id,
    assigned_agent_pool_id and creator_agent_id."""
    base.insert(
        conn,
        "jobs",
        {"id": job_id, "created": now(), "created_by_id": by, "function_id": function["id"],
         "function_name": function["name"], "module_name": function["module_name"],
         "status": JobStatus.PENDING.value, **columns},
    )  # fmt: skip
    append_status(conn, job_id, JobStatus.CREATED, by)
    append_status(conn, job_id, JobStatus.PENDING, by)


def append_status(
    conn: sqlite3.Connection,
    job_id: str,
    status: JobStatus,
    by: str,
    agent_id: str | None = None,
    message: str | None = None,
) -> None:
    """Add an entry to the job's status history."""
    conn.execute(
        "INSERT INTO job_status(id, job_id, seq, created, name, message, agent_id, created_by_id) "
        "VALUES (?, ?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM job_status WHERE job_id = ?), "
        "?, ?, ?, ?, ?)",
        (new_id(), job_id, job_id, now(), status.value, message, agent_id, by),
    )


def _claim_check(conn: sqlite3.Connection, job: sqlite3.Row, agent_id: str | None) -> None:
    if agent_id is None:
        msg = "a claim needs agent_id: PUT .../status?status_name=Claimed&agent_id=..."
        raise Conflict(msg)
    if job["archived"]:
        msg = f"job {job['id']} is archived; restore it (POST .../{job['id']}:restore) first"
        raise Conflict(msg)
    if agents.row(conn, agent_id)["archived"]:
        msg = f"agent {agent_id} is archived and takes no new jobs"
        raise Conflict(msg)
    if job["assigned_agent_id"] and job["assigned_agent_id"] != agent_id:
        msg = f"job {job['id']} is assigned to another agent"
        raise Conflict(msg)
    pool = job["assigned_agent_pool_id"]
    if pool and not pools.is_member(conn, pool, agent_id):
        msg = f"job {job['id']} is assigned to pool {pool}, which this agent is not in"
        raise Conflict(msg)
    if credentials.is_bound(conn, job["id"]) and agents.public_key(conn, agent_id) is None:
        msg = (
            f"job {job['id']} carries credentials; only an agent that advertises inline_auth "
            "and has registered a public key may claim it"
        )
        raise Conflict(msg)


def move(
    conn: sqlite3.Connection,
    job_id: str,
    new: JobStatus,
    agent_id: str | None,
    message: str | None,
    by: str,
) -> None:
    """Move a job to `new` if the table allows it (409 otherwise); caller holds the tx."""
    job = row(conn, job_id)
    current = JobStatus(job["status"])
    if not can_move(current, new):
        msg = f"job {job_id} is {current}; it cannot move to {new}"
        raise Conflict(msg)
    claimed_by = job["claimed_by"]
    guard = ""
    if new is JobStatus.CLAIMED:
        _claim_check(conn, job, agent_id)
        claimed_by = agent_id
        guard = " AND archived = 0"  # archived: withdrawn, never claimable (see set_archived)
    elif new in AGENT_ONLY or new is JobStatus.PENDING:
        if agent_id is not None and claimed_by is not None and agent_id != claimed_by:
            msg = f"job {job_id} is claimed by another agent"
            raise Conflict(msg)
        if new is JobStatus.PENDING:
            claimed_by = None
    allowed = sorted(s.value for s in predecessors(new))
    marks = ",".join("?" * len(allowed))
    updated = conn.execute(
        f"UPDATE jobs SET status = ?, claimed_by = ? WHERE id = ? AND status IN ({marks}){guard}",  # noqa: S608
        (new.value, claimed_by, job_id, *allowed),
    ).rowcount
    if updated != 1:  # pragma: no cover - the row was read in this same transaction
        msg = f"job {job_id} changed status concurrently"
        raise Conflict(msg)
    append_status(conn, job_id, new, by, agent_id or claimed_by, message)


def reassign(conn: sqlite3.Connection, job_id: str, column: Assignment, value: str | None) -> None:
    """Assign a Pending job to another agent or pool (or to none); 409 once it moved on."""
    job = row(conn, job_id)
    if JobStatus(job["status"]) not in {JobStatus.CREATED, JobStatus.PENDING}:
        msg = f"job {job_id} is {job['status']}; only a Pending job can be reassigned"
        raise Conflict(msg)
    conn.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job_id))  # noqa: S608


def set_archived(conn: sqlite3.Connection, job_id: str, archived: bool) -> None:
    """Archive (withdraw) or restore a job; caller holds the tx.

    A job an agent holds (Claimed to Uploading) is not archived under it: the guarded UPDATE
    refuses with 409, so a job is never both held and archived, whichever of a claim and an
    archive comes first; cancel it, or let it end, then archive it. A claim of an archived
    job is refused the same way (`move`).
    """
    held = sorted(s.value for s in ACTIVE) if archived else []
    guard = f" AND status NOT IN ({','.join('?' * len(held))})" if archived else ""
    updated = conn.execute(
        f"UPDATE jobs SET archived = ? WHERE id = ?{guard}",  # noqa: S608
        (int(archived), job_id, *held),
    ).rowcount
    if updated != 1:
        msg = (
            f"job {job_id} is {row(conn, job_id)['status']}: an agent holds it, so it cannot "
            "be archived; cancel it (or let it end) first"
        )
        raise Conflict(msg)
