"""Host OS detection: os-release parsing and the mapping to registry OS names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.hostos import (
    HostOS,
    HostOSError,
    detect,
    from_os_release,
    parse_os_release,
)
from agent.protocol.osnames import REGISTRY_OS_NAMES

UBUNTU_2204 = """\
PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
"""

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="detect() reads os-release only on Linux"
)


def test_parse_os_release_unquotes_and_skips_comments_and_junk() -> None:
    text = (
        "# a comment=with an equals sign\n"
        "\n"
        "ID=rocky\n"
        'ID_LIKE="rhel centos fedora"\n'
        "VERSION_ID='9.3'\n"
        '  NAME="Rocky Linux"  \n'
        "not a field\n"
        "=orphan value\n"
        "URL=https://x.test/?a=b\n"
    )
    assert parse_os_release(text) == {
        "ID": "rocky",
        "ID_LIKE": "rhel centos fedora",
        "VERSION_ID": "9.3",
        "NAME": "Rocky Linux",
        "URL": "https://x.test/?a=b",
    }


def test_parse_os_release_of_nothing_is_empty() -> None:
    assert parse_os_release("") == {}


@pytest.mark.parametrize("version", ["20.04", "22.04", "24.04"])
def test_ubuntu_lts_maps_exactly(version: str) -> None:
    host = from_os_release(parse_os_release(UBUNTU_2204.replace("22.04", version)))
    assert host == HostOS(f"Ubuntu {version}", f"ubuntu {version}", exact=True)


@pytest.mark.parametrize(
    ("os_id", "version", "like", "name", "exact"),
    [
        ("rhel", "9.4", "fedora", "RHEL 9", True),
        ("rhel", "8.10", "fedora", "RHEL 8", True),
        ("rhel", "10.0", "fedora", "RHEL 10", True),
        ("rocky", "9.3", "rhel centos fedora", "RHEL 9", False),
        ("almalinux", "8.9", "rhel centos fedora", "RHEL 8", False),
        ("centos", "9", "rhel fedora", "RHEL 9", False),
        ("ol", "8.9", "fedora", "RHEL 8", False),
        ("someclone", "9.2", "rhel fedora", "RHEL 9", False),  # rhel-like by ID_LIKE
    ],
)
def test_rhel_and_its_rebuilds_map_to_the_rhel_major(
    os_id: str, version: str, like: str, name: str, exact: bool
) -> None:
    host = from_os_release({"ID": os_id, "VERSION_ID": version, "ID_LIKE": like})
    assert host.name == name
    assert host.detected == f"{os_id} {version}"
    assert host.exact is exact


@pytest.mark.parametrize(
    ("version", "name"), [("11", "Ubuntu 20.04"), ("12", "Ubuntu 22.04"), ("13", "Ubuntu 24.04")]
)
def test_debian_maps_to_the_ubuntu_of_its_generation_as_a_stand_in(version: str, name: str) -> None:
    host = from_os_release({"ID": "debian", "VERSION_ID": version})
    assert host == HostOS(name, f"debian {version}", exact=False)
    assert host.name in REGISTRY_OS_NAMES


@pytest.mark.parametrize(
    "fields",
    [
        {"ID": "debian", "VERSION_ID": "10"},
        {"ID": "debian"},  # testing/sid carry no VERSION_ID
        {"ID": "ubuntu", "VERSION_ID": "23.10"},  # not an LTS the registry knows
        {"ID": "fedora", "VERSION_ID": "40"},
        {"ID": "rhel", "VERSION_ID": "7.9"},
        {"ID": "linuxmint", "VERSION_ID": "21.3", "ID_LIKE": "ubuntu debian"},
        {"ID": "arch"},
    ],
)
def test_unknown_distributions_ask_for_host_os(fields: dict[str, str]) -> None:
    with pytest.raises(HostOSError) as info:
        from_os_release(fields)
    message = str(info.value)
    detected = f"{fields['ID']} {fields.get('VERSION_ID', '')}".strip()
    assert f"({detected})" in message
    assert "set host_os (ISTARI_DIGITAL_AGENT_HOST_OS)" in message
    assert all(name in message for name in REGISTRY_OS_NAMES)


def test_no_fields_at_all_is_reported_as_unknown() -> None:
    with pytest.raises(HostOSError, match=r"this host's OS \(unknown\).*set host_os"):
        from_os_release({})


def test_override_wins_without_reading_anything(tmp_path: Path) -> None:
    host = detect("RHEL 9", os_release=tmp_path / "does-not-exist")
    assert host == HostOS("RHEL 9", "set by host_os", exact=True)


@linux_only
def test_detect_reads_the_os_release_file(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text(UBUNTU_2204)
    assert detect(None, os_release=os_release) == HostOS("Ubuntu 22.04", "ubuntu 22.04", True)
    assert detect("", os_release=os_release).name == "Ubuntu 22.04"  # empty is no override


@linux_only
def test_detect_with_no_os_release_file_asks_for_host_os(tmp_path: Path) -> None:
    with pytest.raises(HostOSError, match=r"\(unknown\).*set host_os"):
        detect(None, os_release=tmp_path / "missing")
