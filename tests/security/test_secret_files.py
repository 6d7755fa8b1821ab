"""Secrets a local user of the machine could reach: config files, and the tool's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from agent.execution.local import tool_environment

TOKEN = "s3cret-registry-token-for-tests-only"


@pytest.mark.parametrize("mode", [0o640, 0o660, 0o604, 0o620])
def test_a_config_holding_a_secret_that_another_user_may_open_is_refused(
    tmp_path: Path, mode: int
) -> None:
    """Group-readable (a service group, say) lets every member of the group take the token."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'registry_api_url = "https://registry.example"\nregistry_api_token = "{TOKEN}"\n'
    )
    config.chmod(mode)
    with pytest.raises(ConfigError) as refused:
        load_settings(config, {}, {})
    message = str(refused.value)
    assert f"may read or change it (mode {mode:04o})" in message
    assert f"chmod 600 {config}" in message
    assert TOKEN not in message


def test_a_config_only_its_owner_may_open_is_read(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'registry_api_url = "https://registry.example"\nregistry_api_token = "{TOKEN}"\n'
    )
    for mode in (0o600, 0o400):
        config.chmod(mode)
        token = load_settings(config, {}, {}).registry_api_token
        assert token is not None
        assert token.get_secret_value() == TOKEN


def test_no_tool_inherits_the_systemd_credentials_directory() -> None:
    env = tool_environment(
        {"PATH": "/usr/bin", "CREDENTIALS_DIRECTORY": "/run/credentials/istari-agent.service"}
    )
    assert env == {"PATH": "/usr/bin"}
    assert "CREDENTIALS_DIRECTORY" not in tool_environment(dict(os.environ))


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_config_holding_a_secret_that_another_user_owns_is_refused(tmp_path: Path) -> None:
    """0600 but someone else's: they could rewrite it (say, point the agent at their registry).

    The tests run as root, so the file is handed to another uid (root may read it still)."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'registry_api_url = "https://registry.example"\nregistry_api_token = "{TOKEN}"\n'
    )
    config.chmod(0o600)
    os.chown(config, 4242, 4242)
    with pytest.raises(ConfigError) as refused:
        load_settings(config, {}, {})
    assert "belongs to another user (uid 4242)" in str(refused.value)
