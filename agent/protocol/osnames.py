"""The registry's operating-system names (spec §4, the `OS` enum), in the spec's order.

A job may name one (`operating_system`), a function variant lists those it supports, and an
agent reports its host's (agent/hostos.py maps a host to one).
"""

from __future__ import annotations

from enum import StrEnum


class OS(StrEnum):
    """One of the registry's operating-system names."""

    WINDOWS_11 = "Windows 11"
    WINDOWS_10 = "Windows 10"
    WINDOWS_SERVER_2019 = "Windows Server 2019"
    WINDOWS_SERVER_2022 = "Windows Server 2022"
    UBUNTU_2404 = "Ubuntu 24.04"
    UBUNTU_2204 = "Ubuntu 22.04"
    UBUNTU_2004 = "Ubuntu 20.04"
    RHEL_8 = "RHEL 8"
    RHEL_9 = "RHEL 9"
    RHEL_10 = "RHEL 10"
    MACOS_14 = "macOS 14"
    MACOS_15 = "macOS 15"
    MACOS_26 = "macOS 26"


REGISTRY_OS_NAMES: tuple[str, ...] = tuple(os.value for os in OS)
