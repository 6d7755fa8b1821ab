"""Credentials delivered with a claimed job: opened, checked, written for the tool, removed after.

Each `Job.auth_deliveries[]` entry is sealed to this agent's key (protocol/envelope.py). It is
opened only in memory, checked against its expiry and its salted SHA-384, and written to
`<work dir>/auth/<input name>` (directory 0700, file 0600) for the tool's `auth_info` input.
The runner removes that directory when the job ends, whatever `keep_work_dirs` says; nothing
else ever holds the plaintext.
"""

from __future__ import annotations

import base64
import binascii
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from agent.jobs.errors import InvalidJob
from agent.jobs.workdir import WorkDir, safe_name
from agent.protocol.content import salted_sha
from agent.protocol.envelope import EnvelopeError, open_sealed
from agent.secretfiles import write_secret

_FIELDS = ("input_name", "ciphertext", "expiration", "sha", "salt")


def open_deliveries(
    deliveries: list[dict[str, Any]], key: rsa.RSAPrivateKey, now: datetime
) -> dict[str, bytes]:
    """The plaintext credential for each input, checked; InvalidJob saying what is wrong."""
    opened: dict[str, bytes] = {}
    for d in deliveries:
        if not all(isinstance(d.get(f), str) for f in _FIELDS):
            msg = f"a credential delivery lacks {', '.join(f for f in _FIELDS if f not in d)}"
            raise InvalidJob(msg)
        name = d["input_name"]
        if _expiry(d["expiration"]) <= now:
            msg = (
                f"the credential for input {name} expired at {d['expiration']} before the agent "
                "could use it; submit the job again"
            )
            raise InvalidJob(msg)
        try:
            plaintext = open_sealed(key, base64.b64decode(d["ciphertext"], validate=True))
        except (EnvelopeError, binascii.Error) as e:
            msg = f"the credential for input {name} cannot be opened: {e}"
            raise InvalidJob(msg) from None
        if salted_sha(plaintext, d["salt"]) != d["sha"]:
            msg = f"the credential for input {name} does not match its checksum"
            raise InvalidJob(msg)
        opened[name] = plaintext
    return opened


def write_credentials(workdir: WorkDir, credentials: Mapping[str, bytes]) -> dict[str, Path]:
    """Write each credential 0600 under `<work dir>/auth/` (0700); the path per input."""
    if not credentials:
        return {}
    auth = credentials_dir(workdir)
    auth.mkdir(mode=0o700, exist_ok=True)
    paths = {}
    for name, secret in credentials.items():
        path = auth / safe_name(name, fallback="credential")
        write_secret(path, secret)
        paths[name] = path
    return paths


def credentials_dir(workdir: WorkDir) -> Path:
    return workdir.root / "auth"


def remove_credentials(workdir: WorkDir) -> None:
    """Remove the job's credentials (called whenever a job ends, kept work dir or not)."""
    shutil.rmtree(credentials_dir(workdir), ignore_errors=True)


def _expiry(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        msg = f"a credential delivery has an unreadable expiration: {text!r}"
        raise InvalidJob(msg) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
