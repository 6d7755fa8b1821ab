"""The agent's RSA key: created on first start in the state path (0600), reused after.

The registry gets the public half (PKCS#1 PEM, `PUT /api/v2/agents/{id}/public_key`) and seals
each job's credentials to it; only this agent can open them. An operator may instead point
`private_key_path` at a key shared by several agents (the platform's organisation key).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.errors import AgentError
from agent.secretfiles import InsecureSecretFile, read_secret, write_secret

KEY_BITS = 2048  # what the platform documents for its organisation key


class AgentKeyError(AgentError):
    """The agent's private key cannot be read or used."""


def load_or_create(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key at `path`, made (0600, atomically) if there is none yet."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(read_secret(path), password=None)
        except (OSError, ValueError, TypeError, InsecureSecretFile) as e:
            msg = f"the private key {path} cannot be used: {e}"
            raise AgentKeyError(msg) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            msg = f"the private key {path} is not an RSA key"
            raise AgentKeyError(msg)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_secret(path, pem)
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half as PKCS#1 PEM (`-----BEGIN RSA PUBLIC KEY-----`), as the registry wants."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
