"""Inline credentials, the pure parts: the envelope, the agent's key, opening deliveries."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.auth import keys
from agent.jobs.credentials import open_deliveries
from agent.jobs.errors import InvalidJob
from agent.protocol.content import new_salt, salted_sha
from agent.protocol.envelope import EnvelopeError, open_sealed, seal

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_envelope_opens_with_the_right_key_only_and_detects_tampering(
    key: rsa.RSAPrivateKey,
) -> None:
    sealed = seal(keys.public_pem(key).encode(), b'{"token": "abc"}')
    assert open_sealed(key, sealed) == b'{"token": "abc"}'
    size = int.from_bytes(sealed[:2], "big")
    assert size == key.key_size // 8  # u16 length, then the RSA-OAEP wrapped AES key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(EnvelopeError, match="not sealed to this agent's key"):
        open_sealed(other, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(EnvelopeError, match="altered"):
        open_sealed(key, tampered)
    with pytest.raises(EnvelopeError, match="truncated"):
        open_sealed(key, sealed[: 2 + size + 5])


def test_the_agent_key_is_made_once_private_and_its_public_half_is_pkcs1(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agent_key.pem"
    made = keys.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = keys.load_or_create(path)
    assert again.private_numbers() == made.private_numbers()
    assert keys.public_pem(made).startswith("-----BEGIN RSA PUBLIC KEY-----")
    path.chmod(0o644)
    with pytest.raises(keys.AgentKeyError, match="readable by other users"):
        keys.load_or_create(path)  # a key others can read is refused, not used
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(keys.AgentKeyError, match="cannot be used"):
        keys.load_or_create(path)


def delivery(key: rsa.RSAPrivateKey, secret: bytes, **changes: Any) -> dict[str, Any]:
    salt = new_salt()
    d = {
        "input_name": "api_auth",
        "ciphertext": base64.b64encode(seal(keys.public_pem(key).encode(), secret)).decode(),
        "function_auth_type": "token",
        "expiration": (NOW + timedelta(minutes=15)).isoformat(),
        "sha": salted_sha(secret, salt),
        "salt": salt,
    }
    return {**d, **changes}


def test_deliveries_open_when_fresh_and_intact(key: rsa.RSAPrivateKey) -> None:
    assert open_deliveries([delivery(key, b"s3cret")], key, NOW) == {"api_auth": b"s3cret"}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"expiration": (NOW - timedelta(seconds=1)).isoformat()}, "expired at"),
        ({"sha": "0" * 96}, "does not match its checksum"),
        ({"ciphertext": "not base64!"}, "cannot be opened"),
        ({"expiration": "someday"}, "unreadable expiration"),
    ],
)
def test_a_bad_delivery_fails_the_job_saying_why(
    key: rsa.RSAPrivateKey, changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidJob, match=problem) as info:
        open_deliveries([delivery(key, b"s3cret", **changes)], key, NOW)
    assert "s3cret" not in str(info.value)


def test_a_delivery_missing_a_field_is_refused(key: rsa.RSAPrivateKey) -> None:
    broken = delivery(key, b"x")
    del broken["salt"]
    with pytest.raises(InvalidJob, match="lacks salt"):
        open_deliveries([broken], key, NOW)
