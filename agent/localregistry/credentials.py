"""Stored credentials, their bindings to jobs, and their delivery to the claiming agent only.

A credential is stored once (`POST /api/v2/stored_credentials`, a local-registry extension;
the hosted platform has its own store). A job binds its `auth_info` inputs to credentials at
submission (`auth_bindings`). Only agents that advertise `inline_auth` and have registered a
public key are offered or may claim such a job, and the claim's answer, and only that answer,
carries `auth_deliveries`: each secret sealed to the claiming agent's key (protocol/envelope.py),
with a salted SHA-384 of the plaintext and a short expiry. Secrets live in the registry's
database (its data directory is the operator's to protect); they are never logged. The rows
live in `store/credentials.py`.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.localregistry.errors import BadRequest, Conflict
from agent.localregistry.store import agents, catalog
from agent.localregistry.store import credentials as stored
from agent.protocol.content import new_salt, salted_sha
from agent.protocol.envelope import EnvelopeError, seal

DELIVERY_TTL = timedelta(minutes=15)


def check_bindings(
    conn: sqlite3.Connection, function: dict[str, Any], bindings: Iterable[Any]
) -> list[tuple[str, str]]:
    """(input name, credential id) per binding, checked against the function and the store."""
    schema = catalog.function_schema(conn, function.get("function_schema"))
    inputs = {i["key"]: i["type"] for i in schema["inputs"]} if schema else {}
    checked = []
    for b in bindings:
        if inputs.get(b.input_name) != "auth_info":
            msg = f"auth_bindings: {function['name']} has no auth_info input {b.input_name!r}"
            raise BadRequest(msg)
        cred = stored.state(conn, b.credential_id)
        if cred is None or cred["revoked"] or _expired(cred["expiration"]):
            state = "missing" if cred is None else "revoked" if cred["revoked"] else "expired"
            msg = f"auth_bindings: credential {b.credential_id} is {state}"
            raise Conflict(msg)
        checked.append((b.input_name, b.credential_id))
    return checked


def deliveries(conn: sqlite3.Connection, job_id: str, agent_id: str) -> list[dict[str, Any]]:
    """The job's credentials sealed to `agent_id`'s key (for the claim's answer only)."""
    rows = stored.bound_secrets(conn, job_id)
    if not rows:
        return []
    key = agents.public_key(conn, agent_id)
    if key is None:  # pragma: no cover - the claim was refused already (store.jobs.move)
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
