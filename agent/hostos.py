"""This host's operating system, in the registry's OS names (`Ubuntu 22.04`, `RHEL 9`, ...).

The mapping is pure (`from_os_release`) so every distribution rule is testable; `detect` reads
`/etc/os-release` (or asks `platform` on macOS and Windows). Debian is not a registry OS: a
Debian release maps to the Ubuntu LTS of its generation (same toolchain era, and modules built
for that Ubuntu normally run on it), and the agent says so in its log. Anything else that
matches no registry name is an error asking for the `host_os` setting.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError
from agent.protocol.osnames import REGISTRY_OS_NAMES

_RHEL_LIKE = frozenset({"rhel", "centos", "rocky", "almalinux", "ol", "fedora-asahi-remix"})
_DEBIAN_TO_UBUNTU = {"11": "Ubuntu 20.04", "12": "Ubuntu 22.04", "13": "Ubuntu 24.04"}


class HostOSError(AgentError):
    """This host's OS has no registry OS name; set `host_os`."""


@dataclass(frozen=True)
class HostOS:
    """The registry OS name for this host, and how it was found."""

    name: str
    detected: str  # what the host says it is, e.g. "debian 12"
    exact: bool  # False when the name is a documented stand-in (Debian -> Ubuntu)


def from_os_release(fields: Mapping[str, str]) -> HostOS:
    """Map `/etc/os-release` fields to a registry OS name, or raise HostOSError."""
    os_id = fields.get("ID", "").lower()
    version = fields.get("VERSION_ID", "")
    like = set(fields.get("ID_LIKE", "").lower().split())
    detected = f"{os_id} {version}".strip()
    major = version.split(".")[0]
    if os_id == "ubuntu" and f"Ubuntu {version}" in REGISTRY_OS_NAMES:
        return HostOS(f"Ubuntu {version}", detected, exact=True)
    if (os_id in _RHEL_LIKE or ("rhel" in like and os_id != "fedora")) and (
        f"RHEL {major}" in REGISTRY_OS_NAMES
    ):
        return HostOS(f"RHEL {major}", detected, exact=os_id == "rhel")
    if os_id == "debian" and major in _DEBIAN_TO_UBUNTU:
        return HostOS(_DEBIAN_TO_UBUNTU[major], detected, exact=False)
    msg = (
        f"this host's OS ({detected or 'unknown'}) has no registry OS name; set host_os "
        f"(ISTARI_DIGITAL_AGENT_HOST_OS) to one of: {', '.join(REGISTRY_OS_NAMES)}"
    )
    raise HostOSError(msg)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse the `KEY=value` lines of an os-release file."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def detect(override: str | None = None, os_release: Path = Path("/etc/os-release")) -> HostOS:
    """This host's registry OS name; `override` (the host_os setting) wins when given."""
    if override:
        return HostOS(override, "set by host_os", exact=True)
    if sys.platform == "darwin":
        major = platform.mac_ver()[0].split(".")[0]
        return _known(f"macOS {major}", f"macos {major}")
    if sys.platform == "win32":  # pragma: no cover - not a supported host yet
        return _known(f"Windows {platform.release()}", f"windows {platform.release()}")
    try:
        text = os_release.read_text()
    except OSError:
        text = ""
    return from_os_release(parse_os_release(text))


def _known(name: str, detected: str) -> HostOS:
    if name not in REGISTRY_OS_NAMES:
        msg = f"this host's OS ({detected}) has no registry OS name; set host_os"
        raise HostOSError(msg)
    return HostOS(name, detected, exact=True)
