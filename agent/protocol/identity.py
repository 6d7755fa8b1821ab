"""Identity-service mode, the rules both sides keep: the credential JSON, the token endpoints,
and the RFC 7523 client assertion (ES384), made by the agent and checked by the local registry.

Everything here follows the official SDK (`istari_digital_client/identity/auth/`): the
credential is `{clientId, keyId, key}` with `key` a PEM ECDSA P-384 private key; the assertion
has header `kid=keyId`, claims `iss=sub=clientId`, `aud=<token endpoint URL>`, `iat`,
`exp=iat+300` and a fresh `jti`; it is posted form-encoded to the token endpoint.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

ALGORITHM = "ES384"
# The token endpoint of each identity API version, below the identity base URL.
TOKEN_PATH_V2 = "/api/v2/oauth2/token"  # noqa: S105 - a path, not a secret
TOKEN_PATH_V1 = "/oauth2/token"  # noqa: S105
GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds, as the SDK makes them
MAX_ASSERTION_LIFETIME = 600  # what a checker accepts (the SDK's 300 plus clock skew)
CLOCK_SKEW = 30  # seconds of leeway on iat/exp
DEFAULT_EXPIRES_IN = 3600  # what a client assumes when a token answer has no expires_in


class BadCredentials(ValueError):
    """The identity credentials are not a `{clientId, keyId, key}` object with a P-384 key."""


class BadAssertion(ValueError):
    """A client assertion is malformed, wrongly signed, expired or meant for someone else."""


@dataclass(frozen=True)
class Credentials:
    """An identity: the client id, the id its public key is registered under, the private key."""

    client_id: str
    key_id: str
    private_key: ec.EllipticCurvePrivateKey

    def to_json(self) -> bytes:
        """The credential file's content (the format the SDK's keypair helpers write)."""
        pem = self.private_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        ).decode("ascii")
        return json.dumps({"clientId": self.client_id, "keyId": self.key_id, "key": pem}).encode()


def parse_credentials(raw: bytes) -> Credentials:
    """Credentials from the JSON `{clientId, keyId, key}`; BadCredentials says what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        msg = f"not valid JSON ({e})"
        raise BadCredentials(msg) from None
    if not isinstance(data, dict):
        msg = "not a JSON object with clientId, keyId and key"
        raise BadCredentials(msg)
    values = {}
    for name in ("clientId", "keyId", "key"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            msg = f"'{name}' must be a non-empty string"
            raise BadCredentials(msg)
        values[name] = value
    try:
        key = load_pem_private_key(values["key"].encode(), password=None)
    except (ValueError, TypeError) as e:
        msg = f"'key' is not a PEM private key ({e})"
        raise BadCredentials(msg) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _p384(key):
        msg = "'key' must be an ECDSA P-384 (secp384r1) private key"
        raise BadCredentials(msg)
    return Credentials(values["clientId"], values["keyId"], key)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-384 key pair."""
    return ec.generate_private_key(ec.SECP384R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The public half as SubjectPublicKeyInfo PEM (what `POST /api/v2/key/agent` takes)."""
    return (
        key.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """A registered public key; BadCredentials unless it is PEM ECDSA P-384."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as e:
        msg = f"public_key_pem is not a valid PEM public key ({e})"
        raise BadCredentials(msg) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not _p384(key):
        msg = "public_key_pem must be an ECDSA P-384 (secp384r1) public key"
        raise BadCredentials(msg)
    return key


def client_assertion(creds: Credentials, audience: str, now: float) -> str:
    """The signed assertion for the token endpoint at `audience` (its absolute URL)."""
    issued = int(now)
    claims = {
        "iss": creds.client_id,
        "sub": creds.client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, creds.private_key, algorithm=ALGORITHM, headers={"kid": creds.key_id})


def assertion_subject(assertion: str) -> tuple[str, str]:
    """(client id, key id) an assertion claims, unverified: which public key to check it with."""
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        msg = f"client_assertion is not a JWT ({e})"
        raise BadAssertion(msg) from None
    kid, sub = header.get("kid"), claims.get("sub")
    if not isinstance(kid, str) or not isinstance(sub, str) or not kid or not sub:
        msg = "client_assertion needs a 'kid' header and a 'sub' claim"
        raise BadAssertion(msg)
    return sub, kid


def verify_assertion(
    assertion: str, key: ec.EllipticCurvePublicKey, client_id: str, audience_path: str, now: float
) -> dict[str, Any]:
    """The claims of an assertion signed by `key` for `client_id`, meant for a token endpoint
    whose URL path is `audience_path` (the host is not compared: proxies and loopback names
    differ), unexpired and short-lived; BadAssertion otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[ALGORITHM],
            leeway=CLOCK_SKEW,
            options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"], "verify_aud": False},
        )
    except jwt.PyJWTError as e:
        msg = f"client_assertion refused: {e}"
        raise BadAssertion(msg) from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        msg = "client_assertion: iss and sub must both be the client id"
        raise BadAssertion(msg)
    aud = claims["aud"]
    if not isinstance(aud, str) or _path_of(aud) != audience_path:
        msg = f"client_assertion: aud must be this token endpoint's URL (path {audience_path})"
        raise BadAssertion(msg)
    if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_LIFETIME:
        msg = f"client_assertion lives longer than {MAX_ASSERTION_LIFETIME} s"
        raise BadAssertion(msg)
    if int(claims["iat"]) > now + CLOCK_SKEW:
        msg = "client_assertion was issued in the future"
        raise BadAssertion(msg)
    return claims


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return path.split("?", 1)[0].rstrip("/") or "/"


def _p384(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bool:
    return isinstance(key.curve, ec.SECP384R1)
