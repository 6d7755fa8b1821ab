"""sd_notify against a real datagram socket: READY after registration, a watchdog that beats only
while the registry answers, and STOPPING on drain.

The socket is an abstract one (`@...`, as systemd may hand out) or a path; the agent reaches
the registry through a fault proxy, so the registry can be made unreachable (503 to every
request) and brought back.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from agent.daemon import Mode
from agent.stopping import Stop
from agent.systemd import Systemd, SystemdEnv, message
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import Fault, FaultProxy

DEADLINE = 15.0
WATCHDOG_USEC = 200_000  # WatchdogSec=0.2: a beat every 0.1 s


class NotifySocket:
    """The receiving end of NOTIFY_SOCKET, as systemd binds it."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # what NOTIFY_SOCKET says
        self.seen: list[dict[str, str]] = []

    async def next(self) -> dict[str, str]:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 4096)
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.seen.append(fields)
        return fields

    async def until(self, key: str, value: str | None = None) -> dict[str, str]:
        """The next datagram carrying `key` (with `value`, if given)."""
        async with asyncio.timeout(DEADLINE):
            while True:
                fields = await self.next()
                if key in fields and (value is None or value in fields[key]):
                    return fields


@contextmanager
def notify_socket(abstract: bool) -> Iterator[NotifySocket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    with sock, tempfile.TemporaryDirectory(dir="/tmp") as short:  # sun_path: 108 bytes at most
        if abstract:
            name = f"istari-test-{secrets.token_hex(6)}"
            sock.bind("\0" + name)
            yield NotifySocket(sock, "@" + name)
        else:
            path = str(Path(short) / "notify")
            sock.bind(path)
            yield NotifySocket(sock, path)


@asynccontextmanager
async def serving(h: AgentHarness, systemd: Systemd, stop: Stop) -> AsyncIterator[None]:
    # Idle (an hour between polls), so only the watchdog's own probe refreshes the contact.
    task = asyncio.create_task(h.run(Mode.SERVE, stop=stop, systemd=systemd, poll_interval=3600))
    try:
        yield
    finally:
        if not stop.stopping:
            stop.request("test")
        await task


def test_message_is_key_value_lines_with_newlines_flattened() -> None:
    assert message(READY="1", STATUS="two\nlines") == b"READY=1\nSTATUS=two lines"


def test_without_a_socket_nothing_is_sent_and_nothing_fails() -> None:
    systemd = Systemd(SystemdEnv())
    systemd.ready("fine")  # no NOTIFY_SOCKET: not under systemd
    assert systemd.watchdog_interval is None


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
async def test_ready_after_registration_watchdog_only_while_the_registry_answers_then_stopping(
    faulty: AgentHarness, proxy: FaultProxy, abstract: bool
) -> None:
    with notify_socket(abstract) as notify:
        systemd = Systemd(SystemdEnv(notify.address, WATCHDOG_USEC))
        assert systemd.watchdog_interval == pytest.approx(0.1)
        stop = Stop()
        async with serving(faulty, systemd, stop):
            ready = await notify.until("READY", "1")
            agent_id = ready["STATUS"].split()[1].rstrip(":")
            registered = await faulty.client.get_agent(agent_id)  # it exists already
            assert registered.id == agent_id
            assert "0 jobs resumed" in ready["STATUS"]
            beat = await notify.until("WATCHDOG", "1")
            assert beat["STATUS"] == "0 of 1 slots busy; registry reachable"

            proxy.inject(Fault("*", r".", "status", times=10**6, status=503))
            down = await notify.until("STATUS", "registry unreachable")
            assert "WATCHDOG" not in down  # systemd will restart an agent cut off this long
            proxy.clear()
            back = await notify.until("WATCHDOG", "1")
            assert back["STATUS"].endswith("registry reachable")
            assert proxy.hits("GET", "/api/v2/health/readiness") >= 1  # it asked, idle as it was

            stop.request("drain")
            stopping = await notify.until("STOPPING", "1")
            assert stopping["STATUS"].startswith("draining")
