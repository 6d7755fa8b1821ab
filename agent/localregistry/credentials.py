"""Stored credentials, their bindings to jobs, and their delivery to the claiming agent only.

A credential is stored once (`POST /api/v2/stored_credentials`, a local-registry extension;
the hosted platform has its own store). A job binds its `auth_info` inputs to credentials at
submission (`auth_bindings`). Only agents that advertise `inline_auth` and have registered a
public key are offered or may claim such a job, and the claim's answer, and only that answer,
carries `auth_deliveries`: each secret sealed to the claiming agent's key (protocol/envelope.py),
with a salted SHA-384 of the plaintext and a short expiry. Secrets live in the registry's
database (its data directory is the operator's to protect); they are never logged.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.localregistry.errors import BadRequest, Conflict
from agent.localregistry.wire import loads
from agent.protocol.content import new_salt, salted_sha
from agent.protocol.envelope import EnvelopeError, seal

DELIVERY_TTL = timedelta(minutes=15)
INLINE_AUTH = "inline_auth"
SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    function_auth_type TEXT NOT NULL, secret BLOB NOT NULL, expiration TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_credentials (
    job_id TEXT NOT NULL REFERENCES jobs(id), input_name TEXT NOT NULL,
    credential_id TEXT NOT NULL REFERENCES credentials(id), PRIMARY KEY (job_id, input_name)
);
"""

# Jobs with bindings are offered only to agents that can take them (matching.py appends this).
OFFERABLE = """
AND (NOT EXISTS (SELECT 1 FROM job_credentials jc WHERE jc.job_id = jobs.id)
     OR (EXISTS (SELECT 1 FROM agents a, json_each(a.capabilities) c
                 WHERE a.id = :agent AND c.value = 'inline_auth')
         AND EXISTS (SELECT 1 FROM agent_history h
                     WHERE h.agent_id = :agent AND h.kind = 'public_key')))
"""


def check_bindings(
    conn: sqlite3.Connection, function: dict[str, Any], bindings: Iterable[Any]
) -> list[tuple[str, str]]:
    """(input name, credential id) per binding, checked against the function and the store."""
    row = conn.execute(
        "SELECT doc FROM function_schemas WHERE id = ?", (function.get("function_schema"),)
    ).fetchone()
    inputs = {i["key"]: i["type"] for i in loads(row["doc"])["inputs"]} if row else {}
    checked = []
    for b in bindings:
        if inputs.get(b.input_name) != "auth_info":
            msg = f"auth_bindings: {function['name']} has no auth_info input {b.input_name!r}"
            raise BadRequest(msg)
        cred = conn.execute(
            "SELECT revoked, expiration FROM credentials WHERE id = ?", (b.credential_id,)
        ).fetchone()
        if cred is None or cred["revoked"] or _expired(cred["expiration"]):
            state = "missing" if cred is None else "revoked" if cred["revoked"] else "expired"
            msg = f"auth_bindings: credential {b.credential_id} is {state}"
            raise Conflict(msg)
        checked.append((b.input_name, b.credential_id))
    return checked


def bind(conn: sqlite3.Connection, job_id: str, bindings: list[tuple[str, str]]) -> None:
    conn.executemany(
        "INSERT INTO job_credentials(job_id, input_name, credential_id) VALUES (?, ?, ?)",
        [(job_id, name, cred) for name, cred in bindings],
    )


def public_key(conn: sqlite3.Connection, agent_id: str) -> str | None:
    """The agent's latest registered public key, if it can take credentials at all."""
    agent = conn.execute("SELECT capabilities FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if agent is None or INLINE_AUTH not in loads(agent["capabilities"] or "[]"):
        return None
    row = conn.execute(
        "SELECT doc FROM agent_history WHERE agent_id = ? AND kind = 'public_key' "
        "ORDER BY created DESC LIMIT 1",
        (agent_id,),
    ).fetchone()
    return str(loads(row["doc"])["public_key"]) if row else None


def check_claimable(conn: sqlite3.Connection, job_id: str, agent_id: str) -> None:
    """409 when the job carries credentials this agent could not open."""
    bound = conn.execute("SELECT 1 FROM job_credentials WHERE job_id = ?", (job_id,)).fetchone()
    if bound and public_key(conn, agent_id) is None:
        msg = (
            f"job {job_id} carries credentials; only an agent that advertises inline_auth "
            "and has registered a public key may claim it"
        )
        raise Conflict(msg)


def deliveries(conn: sqlite3.Connection, job_id: str, agent_id: str) -> list[dict[str, Any]]:
    """The job's credentials sealed to `agent_id`'s key (for the claim's answer only)."""
    rows = conn.execute(
        "SELECT jc.input_name, c.secret, c.function_auth_type FROM job_credentials jc "
        "JOIN credentials c ON c.id = jc.credential_id WHERE jc.job_id = ? ORDER BY jc.input_name",
        (job_id,),
    ).fetchall()
    if not rows:
        return []
    key = public_key(conn, agent_id)
    if key is None:  # pragma: no cover - check_claimable refused the claim already
        return []
    expiration = (datetime.now(UTC) + DELIVERY_TTL).isoformat()
    out = []
    for r in rows:
        secret, salt = bytes(r["secret"]), new_salt()
        try:
            sealed = seal(key.encode(), secret)
        except (EnvelopeError, ValueError) as e:
            msg = f"agent {agent_id}'s public key cannot be used: {e}"
            raise Conflict(msg) from None
        out.append(
            {
                "input_name": r["input_name"],
                "ciphertext": base64.b64encode(sealed).decode(),
                "function_auth_type": r["function_auth_type"],
                "expiration": expiration,
                "sha": salted_sha(secret, salt),
                "salt": salt,
            }
        )
    return out


def _expired(expiration: str | None) -> bool:
    return expiration is not None and datetime.fromisoformat(expiration) <= datetime.now(UTC)
