"""Telling systemd the truth (sd_notify): ready, stopping, a status line, and a fair watchdog.

`READY=1` goes out once the agent is registered and its unfinished jobs are picked up again,
`STOPPING=1` when it starts to drain, `RELOADING=1` then `READY=1` around a configuration
reload (SIGHUP), and `STATUS=` lines say what it is doing. With
`WatchdogSec=` set, `WATCHDOG=1` is sent every half period, but only while the registry has
answered within the period: an agent that cannot reach its registry (or whose event loop is
stuck) is restarted by systemd, and with `KillMode=process` its tools run on and are
re-attached. An idle agent with push may not talk to the registry for minutes, so before a
beat with no recent contact the watchdog asks the registry's readiness endpoint itself.

The protocol is one datagram of `KEY=VALUE` lines to `$NOTIFY_SOCKET` (a path, or an abstract
socket when it starts with `@`). Without a socket (not under systemd) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SystemdEnv:
    """What systemd told the agent through its environment (the CLI reads it)."""

    notify_socket: str | None = None
    watchdog_usec: int | None = None  # only when WATCHDOG_PID is ours (or absent)


def message(**fields: str) -> bytes:
    """The datagram for `fields`, e.g. READY="1", STATUS="..." (pure; newlines flattened)."""
    lines = (f"{key}={value.replace(chr(10), ' ')}" for key, value in fields.items())
    return "\n".join(lines).encode()


class Systemd:
    """The notify socket of one agent process."""

    def __init__(self, env: SystemdEnv | None = None) -> None:
        self.env = env or SystemdEnv()
        address = self.env.notify_socket
        self._address = "\0" + address[1:] if address and address.startswith("@") else address

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between beats (half of WatchdogSec), or None without a watchdog."""
        usec = self.env.watchdog_usec
        return usec / 2e6 if usec else None

    def notify(self, **fields: str) -> None:
        """Send `fields`; a failure is logged once per call, never raised."""
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message(**fields), self._address)
        except OSError as e:
            log.warning("systemd.notify_failed", error=str(e))

    def ready(self, status: str) -> None:
        self.notify(READY="1", STATUS=status)

    def stopping(self, status: str) -> None:
        self.notify(STOPPING="1", STATUS=status)

    def reloading(self) -> None:
        """A reload began (systemd shows the unit reloading until `reloaded`). MONOTONIC_USEC
        is what `Type=notify-reload` asks for; plain `Type=notify` ignores it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify(RELOADING="1", MONOTONIC_USEC=str(usec), STATUS="reloading the configuration")

    def reloaded(self, status: str) -> None:
        """The reload ended, whatever its outcome: the agent is ready again."""
        self.notify(READY="1", STATUS=status)

    async def watchdog(self, client: RegistryClient, describe: Callable[[], str]) -> None:
        """Beat while the registry answers; never returns (returns at once without a watchdog).

        `describe` gives the status line for the agent's work (e.g. "2 jobs running").
        """
        interval = self.watchdog_interval
        if interval is None:
            return
        period = 2 * interval
        while True:
            await asyncio.sleep(interval)  # the beat's own period, not a wait for something
            if client.contact_age() > interval:
                with contextlib.suppress(RegistryError, TimeoutError):
                    async with asyncio.timeout(interval / 2):
                        await client.readiness()
            age = client.contact_age()
            if age <= period:
                self.notify(WATCHDOG="1", STATUS=f"{describe()}; registry reachable")
            else:
                self.notify(STATUS=f"{describe()}; registry unreachable for {age:.0f} s")
