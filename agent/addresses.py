"""`HOST:PORT` listener addresses, checked where the config is read (pure)."""

from __future__ import annotations

import ipaddress


def parse_address(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` as (host, port); ValueError when it is neither (pure)."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        msg = f"{address!r} is not HOST:PORT (e.g. 127.0.0.1:9464)"
        raise ValueError(msg)
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (pure)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
