"""TLS contexts for the agent's connections and the local registry's listener.

Client side: the system's CAs or a CA bundle, an optional client certificate, and
verification that is only ever off when a setting says so (the caller logs it loudly). A file
that cannot be read or a key that does not match its certificate is a `TLSError` naming it.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from agent.errors import AgentError


class TLSError(AgentError):
    """A certificate, key or CA bundle cannot be used."""


def client_context(
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    *,
    verify: bool = True,
) -> ssl.SSLContext:
    """A context that verifies the server (against `ca_file`, or the system's CAs)."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if cert_file is not None:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        msg = f"TLS files unusable (CA {ca_file}, certificate {cert_file}, key {key_file}): {e}"
        raise TLSError(msg) from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """A listener's context; with `client_ca_file`, clients must present a certificate it signed."""
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file is not None:
            context.load_verify_locations(client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        msg = f"TLS files unusable (certificate {cert_file}, key {key_file}): {e}"
        raise TLSError(msg) from None
    return context
