"""Who may use the agent's HTTP listener: its token file, and the Host names it answers.

The token is the stripped content of `Settings.http_token_path`: made on first start (0600,
atomically, `secrets.token_urlsafe(32)`) when absent, refused when another user may read it
or when it is shorter than `MIN_TOKEN`. With `http_public` it must be a file the operator
made (`http_token_file`, or the systemd credential the CLI passes as one), never the one the
agent would make. The Host rule is pure (`HostRule`); aiohttp stays in agent/health.py, so
the CLI can import this module cheaply. No message here ever holds the token.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from agent.addresses import is_loopback, parse_address
from agent.config import Settings
from agent.errors import AgentError
from agent.secretfiles import foreign_owner, others_may_use, write_secret

MIN_TOKEN = 32  # characters
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 - names of a wildcard bind, not a bind
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::([0-9]{1,5}))?")


class HTTPAccessError(AgentError):
    """The HTTP listener's token or allowed hosts cannot be used."""


@dataclass(frozen=True)
class Access:
    """What the listener checks: the token (never shown), its file, the hosts, open metrics."""

    token: str = field(repr=False)
    token_path: Path
    allowed_hosts: tuple[str, ...] = ()
    metrics_open: bool = False


def prepare(settings: Settings) -> Access:
    """The listener's access settings, the token made if it may be; HTTPAccessError if unusable."""
    allowed = settings.http_allowed_hosts
    for entry in allowed:
        if split_host(entry) is None:
            msg = f"http_allowed_hosts: {entry!r} is not NAME, NAME:PORT, [V6] or [V6]:PORT"
            raise HTTPAccessError(msg)
    path = settings.http_token_path
    if settings.http_public and settings.http_token_file is None:
        msg = (
            "http_public = true needs a token you made: set http_token_file to a file only the "
            f"agent's user can read, holding at least {MIN_TOKEN} characters (e.g. `umask 077; "
            "openssl rand -base64 33 > FILE`), or give the systemd credential http-token"
        )
        raise HTTPAccessError(msg)
    if not path.exists() and settings.http_public:
        msg = f"the HTTP token file {path} does not exist (http_public needs one you made)"
        raise HTTPAccessError(msg)
    if not path.exists():
        try:
            write_secret(path, secrets.token_urlsafe(32).encode("ascii"))
        except OSError as e:
            msg = f"the HTTP token file {path} cannot be made: {e.strerror}"
            raise HTTPAccessError(msg) from None
    return Access(read_token(path), path, allowed, settings.http_metrics_open)


def read_token(path: Path) -> str:
    """The token in `path`, stripped; HTTPAccessError if others may read it, or it is short."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    except FileNotFoundError:
        msg = f"the HTTP token file {path} does not exist; start the agent first (it makes one)"
        raise HTTPAccessError(msg) from None
    except OSError as e:
        msg = f"the HTTP token file {path} cannot be read: {e.strerror}"
        raise HTTPAccessError(msg) from None
    with os.fdopen(fd, "rb") as f:  # checked and read through one descriptor: no swap between
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            msg = f"the HTTP token file {path} is not a regular file"
            raise HTTPAccessError(msg)
        if (uid := foreign_owner(fd)) is not None:
            msg = f"the HTTP token file {path} belongs to another user (uid {uid}); it must be "
            msg += "this user's or root's"
            raise HTTPAccessError(msg)
        if others_may_use(fd, mode):
            msg = (
                f"the HTTP token file {path} may be read by other users (mode "
                f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
            )
            raise HTTPAccessError(msg)
        data = f.read()
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        msg = f"the HTTP token file {path} does not hold text"
        raise HTTPAccessError(msg) from None
    if len(token) < MIN_TOKEN:
        msg = f"the HTTP token in {path} is too short: it needs at least {MIN_TOKEN} characters"
        raise HTTPAccessError(msg)
    return token


def dashboard_url(settings: Settings) -> str:
    """The dashboard's address with the token in it, for `istari-agent dashboard-url`."""
    if settings.http_address is None:
        msg = "the agent serves no HTTP: set http_address (e.g. 127.0.0.1:9464)"
        raise HTTPAccessError(msg)
    host, port = parse_address(settings.http_address)
    if port == 0:
        msg = "http_address has port 0: see the agent's http.listening log line for the port"
        raise HTTPAccessError(msg)
    if host in WILDCARDS:
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    token = read_token(settings.http_token_path)
    return f"http://{hostport(host, port)}/dashboard?token={quote(token, safe='')}"


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header (or an allowed-hosts entry) as (lower-case name, port or None); None if bad."""
    match = _HOST.fullmatch(value.strip().lower())
    if match is None:
        return None
    name = match[1].removeprefix("[").removesuffix("]")
    if match[1].startswith("[") and not _is_ip(name):
        return None
    return name, int(match[2]) if match[2] else None


class HostRule:
    """Which Host headers the listener answers (pure; DNS rebinding sends the page's own name).

    Answered: the bound address (and the configured name) with its port; for a loopback or
    wildcard bind, `localhost`, `127.0.0.1` and `[::1]` with the port; for a wildcard bind
    (0.0.0.0, ::), any IP address with the port (a rebinding page sends a name, never an IP
    address); and each `http_allowed_hosts` entry: `NAME` with any port or none, `NAME:PORT`
    with that port only. Names are compared case-insensitively; no port means port 80.
    """

    def __init__(self, allowed: tuple[str, ...]) -> None:
        entries = [e for e in map(split_host, allowed) if e is not None]
        self.any_port = {name for name, port in entries if port is None}
        self.exact = {(name, port) for name, port in entries if port is not None}
        self.ip_ports: set[int] = set()

    def bound(self, addresses: list[tuple[str, int]]) -> None:
        """Answer for the addresses the listener is bound to (known once it listens)."""
        for host, port in addresses:
            self.exact.add((host.lower(), port))
            if is_loopback(host) or host in WILDCARDS:
                self.exact.update((name, port) for name in LOOPBACK_NAMES)
            if host in WILDCARDS:
                self.ip_ports.add(port)

    def allows(self, header: str | None) -> bool:
        parsed = split_host(header) if header else None
        if parsed is None:
            return False
        name, given = parsed
        port = 80 if given is None else given
        if name in self.any_port or (name, port) in self.exact:
            return True
        return port in self.ip_ports and _is_ip(name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
