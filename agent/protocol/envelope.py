"""The envelope credentials travel in: RSA-OAEP wraps a fresh AES-256-GCM key (pure crypto).

Layout (spec §3.6, the SDK core's `encrypt`): `u16 big-endian len(K) ‖ K ‖ 12-byte nonce ‖
AES-256-GCM ciphertext ‖ 16-byte tag`, where K is the 32-byte key encrypted with RSA-OAEP
(SHA-256, MGF1-SHA-256) to the recipient's public key. `seal` is what a registry does (the
local registry, and tests); `open_sealed` is what the agent does.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import AgentError

_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_NONCE = 12
_KEY = 32


class EnvelopeError(AgentError):
    """An envelope that is malformed, or not sealed to this key, or tampered with."""


def seal(public_key_pem: bytes, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` to the RSA public key in `public_key_pem` (PKCS#1 or SPKI PEM)."""
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        msg = "not an RSA public key"
        raise EnvelopeError(msg)
    secret, nonce = os.urandom(_KEY), os.urandom(_NONCE)
    wrapped = key.encrypt(secret, _OAEP)
    return (
        struct.pack(">H", len(wrapped))
        + wrapped
        + nonce
        + AESGCM(secret).encrypt(nonce, plaintext, None)
    )


def open_sealed(private_key: rsa.RSAPrivateKey, envelope: bytes) -> bytes:
    """The plaintext of an envelope sealed to `private_key`'s public half."""
    if len(envelope) < 2:
        msg = "the envelope is too short"
        raise EnvelopeError(msg)
    (size,) = struct.unpack(">H", envelope[:2])
    wrapped = envelope[2 : 2 + size]
    nonce = envelope[2 + size : 2 + size + _NONCE]
    body = envelope[2 + size + _NONCE :]
    if len(wrapped) != size or len(nonce) != _NONCE or not body:
        msg = "the envelope is truncated"
        raise EnvelopeError(msg)
    try:
        secret = private_key.decrypt(wrapped, _OAEP)
        return AESGCM(secret).decrypt(nonce, body, None)
    except (ValueError, InvalidTag):
        msg = "the envelope was not sealed to this agent's key, or was altered"
        raise EnvelopeError(msg) from None
