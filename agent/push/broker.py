"""Connecting to an MQTT broker: the URL, credentials and TLS both the agent and registry use.

`mqtt://host[:port]` is plain TCP (port 1883), `mqtts://host[:port]` is TLS (port 8883) with
the system's CAs or a CA file, and an optional client certificate. Passwords never live in
the URL, so a URL can be logged as it is. Reconnects wait a fully jittered exponential delay,
so a fleet of agents does not reconnect to a restarted broker in lockstep.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiomqtt

from agent.tls import client_context

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
KEEPALIVE = 30  # seconds; the broker publishes a last will after 1.5x this without traffic
CONNECT_TIMEOUT = 10.0
RETRY_CAP = 30.0  # seconds: the longest wait between reconnect attempts


class BrokerURLError(ValueError):
    """An MQTT URL that cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class Broker:
    """Where an MQTT broker is and how to log in to it."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> Broker:
        """Parse `mqtt[s]://[user@]host[:port]`; a `username` given here wins over the URL's.

        Raises BrokerURLError for another scheme, a missing host, a bad port or a password
        in the URL.
        """
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            msg = f"MQTT URL must start with mqtt:// or mqtts://, not {url.split(':')[0]!r}"
            raise BrokerURLError(msg)
        if parts.password is not None:
            msg = "put the MQTT password in its own setting, not in the URL"
            raise BrokerURLError(msg)
        try:
            port = parts.port or SCHEMES[parts.scheme]
        except ValueError:
            msg = "the MQTT URL's port is not a number from 1 to 65535"
            raise BrokerURLError(msg) from None
        if not parts.hostname or parts.path not in {"", "/"}:
            msg = "an MQTT URL is mqtt://HOST[:PORT] (mqtts:// for TLS), with no path"
            raise BrokerURLError(msg)
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=username or (unquote(parts.username) if parts.username else None),
            password=password,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )

    @property
    def url(self) -> str:
        """The broker's URL without credentials, for logs and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for `mqtts://` (verifying the broker, presenting a client cert)."""
        if not self.tls:
            return None
        return client_context(self.ca_file, self.cert_file, self.key_file)

    def client(self, identifier: str, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
        """A (not yet connected) client; create it inside the running event loop."""
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            will=will,
            clean_session=True,  # anything missed while away is found by polling
            keepalive=KEEPALIVE,
            timeout=CONNECT_TIMEOUT,
            tls_context=self.tls_context(),
        )


class Backoff:
    """Delays for reconnecting: a random half-to-all of a doubling ceiling, capped."""

    def __init__(self, first: float = 0.5, cap: float = RETRY_CAP) -> None:
        self.first = first
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self.cap, self.first * 2**self.attempts)
        self.attempts += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """A connection worked: start again from the first delay."""
        self.attempts = 0


def raise_if_cancelled() -> None:
    """Raise the cancellation that aiomqtt's `asyncio.wait_for` may have swallowed.

    On Python 3.11, `wait_for` returns its future's result when that completes just as the
    task is cancelled (CPython gh-86296, fixed in 3.12): the CancelledError never arrives,
    but the task stays marked as cancelling, so stopping the registry would hang.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
