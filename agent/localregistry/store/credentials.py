"""Stored credentials and their bindings to jobs: `credentials`, `job_credentials`."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.localregistry.store import base

# Jobs with bindings are offered only to agents that can take them (store/jobs.py appends
# this to what an agent is offered): agents that advertise inline_auth and registered a key.
OFFERABLE = """
AND (NOT EXISTS (SELECT 1 FROM job_credentials jc WHERE jc.job_id = jobs.id)
     OR (EXISTS (SELECT 1 FROM agents a, json_each(a.capabilities) c
                 WHERE a.id = :agent AND c.value = 'inline_auth')
         AND EXISTS (SELECT 1 FROM agent_history h
                     WHERE h.agent_id = :agent AND h.kind = 'public_key')))
"""


def insert(conn: sqlite3.Connection, doc: dict[str, Any], secret: bytes) -> None:
    """Store a credential: its answered document's fields and its secret."""
    base.insert(conn, "credentials", {**doc, "secret": secret})


def revoke(conn: sqlite3.Connection, credential_id: str) -> bool:
    """Revoke a credential; whether there was one."""
    return bool(
        conn.execute("UPDATE credentials SET revoked = 1 WHERE id = ?", (credential_id,)).rowcount
    )


def state(conn: sqlite3.Connection, credential_id: str) -> sqlite3.Row | None:
    """The credential's `revoked` and `expiration`, if it exists."""
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT revoked, expiration FROM credentials WHERE id = ?", (credential_id,)
    ).fetchone()


def bind(conn: sqlite3.Connection, job_id: str, bindings: list[tuple[str, str]]) -> None:
    """Bind (input name, credential id)s to a job."""
    conn.executemany(
        "INSERT INTO job_credentials(job_id, input_name, credential_id) VALUES (?, ?, ?)",
        [(job_id, name, cred) for name, cred in bindings],
    )


def is_bound(conn: sqlite3.Connection, job_id: str) -> bool:
    """Whether the job carries credentials."""
    found = conn.execute("SELECT 1 FROM job_credentials WHERE job_id = ?", (job_id,))
    return found.fetchone() is not None


def bound_secrets(conn: sqlite3.Connection, job_id: str) -> list[sqlite3.Row]:
    """The job's bindings with their secrets (`input_name`, `secret`, `function_auth_type`)."""
    return conn.execute(
        "SELECT jc.input_name, c.secret, c.function_auth_type FROM job_credentials jc "
        "JOIN credentials c ON c.id = jc.credential_id WHERE jc.job_id = ? ORDER BY jc.input_name",
        (job_id,),
    ).fetchall()
