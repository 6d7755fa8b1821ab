"""A real mosquitto broker for tests: generated config, password file, a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from agent.push.broker import Broker
from tests.support.certs import Pki

STARTUP_DEADLINE = 10.0
STOP_DEADLINE = 10.0
_POLL_INTERVAL = 0.02


def _find(name: str, fallback: str) -> str:
    """Locate a mosquitto program; /usr/sbin and /usr/bin are not on every user's PATH."""
    found = shutil.which(name)
    if found is not None:
        return found
    if Path(fallback).is_file():
        return fallback
    msg = f"{name} not found; run scripts/system-packages"
    raise RuntimeError(msg)


def free_port(host: str) -> int:
    """A port nothing listens on right now (the usual bind-to-0 probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class Mosquitto:
    """One mosquitto process in its own directory; it can be stopped and started on one port.

    Anonymous clients are refused; `username`/`password` are in a password file made with
    `mosquitto_passwd`. Nothing is persisted between restarts. The broker logs to `log_path`
    (and, before its config is loaded, to `stderr_path`).
    """

    host = "127.0.0.1"

    def __init__(
        self, directory: Path, username: str = "istari-test", tls: Pki | None = None
    ) -> None:
        self.directory = directory
        self.tls = tls
        self.username = username
        self.password = secrets.token_urlsafe(16)
        self.port = free_port(self.host)
        self.log_path = directory / "mosquitto.log"
        self.stderr_path = directory / "mosquitto.stderr"
        self.config_path = directory / "mosquitto.conf"
        self._binary = _find("mosquitto", "/usr/sbin/mosquitto")
        self._process: asyncio.subprocess.Process | None = None
        self._write_config()

    @property
    def url(self) -> str:
        """`mqtt[s]://host:port` (credentials are separate: `username`, `password`)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def broker(self) -> Broker:
        """How the agent and the registry reach this broker, credentials (and certs) included."""
        tls = self.tls
        return Broker(
            self.host,
            self.port,
            tls=tls is not None,
            username=self.username,
            password=self.password,
            ca_file=tls.ca if tls else None,
            cert_file=tls.client_cert if tls else None,
            key_file=tls.client_key if tls else None,
        )

    @property
    def running(self) -> bool:
        """Whether the broker process is alive, as far as the event loop has noticed."""
        return self._process is not None and self._process.returncode is None

    def _write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        passwords = self.directory / "passwords"
        subprocess.run(
            [
                _find("mosquitto_passwd", "/usr/bin/mosquitto_passwd"),
                "-b", "-c", str(passwords), self.username, self.password,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        passwords.chmod(0o600)
        tls = (
            f"cafile {self.tls.ca}\ncertfile {self.tls.server_cert}\n"
            f"keyfile {self.tls.server_key}\nrequire_certificate true\n"
            if self.tls
            else ""
        )
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            f"{tls}"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            "persistence false\n"
            f"log_dest file {self.log_path}\n"
            "log_type all\n"
            # Run as whoever runs the tests: as root, mosquitto would otherwise switch to the
            # `mosquitto` user, which cannot read the password file in our directory.
            f"user {getpass.getuser()}\n"
        )

    async def start(self) -> None:
        """Start the broker (again, on the same port) and return once it accepts connections."""
        if self.running:
            msg = "mosquitto is already running"
            raise RuntimeError(msg)
        # Config errors go to stderr before the log file is open, so keep stderr in a file too.
        with self._stderr_file() as stderr:
            self._process = await asyncio.create_subprocess_exec(
                self._binary,
                "-c",
                str(self.config_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            async with asyncio.timeout(STARTUP_DEADLINE):
                await self._wait_listening()
        except BaseException:
            await self.stop()
            raise

    def _stderr_file(self) -> BinaryIO:
        return self.stderr_path.open("ab")

    async def _wait_listening(self) -> None:
        while True:
            if not self.running:
                msg = f"mosquitto exited at start; see {self.stderr_path} and {self.log_path}"
                raise RuntimeError(msg)
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                # Polling the port: mosquitto says nothing on stdout when its listener is up,
                # so we retry the connect until it succeeds or the caller's deadline passes.
                await asyncio.sleep(_POLL_INTERVAL)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        """Terminate the broker and wait for it (kill after a deadline); no-op if stopped."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(STOP_DEADLINE):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL the broker (no clean disconnects, no wills sent in order) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

    async def __aenter__(self) -> Mosquitto:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
