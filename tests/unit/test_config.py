"""Settings: precedence (defaults < TOML < environment < flags), one-line errors, no secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from agent.config import ConfigError, KeepWorkDirs, Settings, load_settings

URL = "http://registry.test:8765"
TOKEN = "s3cret-token-never-shown"
REQUIRED: dict[str, Any] = {"registry_api_url": URL, "registry_api_token": TOKEN}


def write_toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(body)
    path.chmod(0o600)  # as a config holding a token must be
    return path


def env(**values: str) -> dict[str, str]:
    return {f"ISTARI_DIGITAL_AGENT_{k.upper()}": v for k, v in values.items()}


def one_line_error(config_file: Path | None, flags: dict[str, Any], environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(config_file, flags, environ)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config error: ")
    return message


# Precedence.


def test_defaults_apply_when_nothing_else_is_given() -> None:
    s = load_settings(None, REQUIRED, {})
    assert s.poll_interval == 5.0
    assert s.process_timeout == 600.0
    assert s.keep_work_dirs is KeepWorkDirs.FAILED
    assert s.module_configurations == {}
    assert s.host_os is None
    assert s.registry_url == URL  # no trailing slash, though the URL type adds one


def test_file_beats_defaults_env_beats_file_flags_beat_env(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        f'registry_api_url = "{URL}"\nregistry_api_token = "file-token"\n'
        "poll_interval = 2.0\nkill_grace = 3.0\nprocess_timeout = 30.0\n",
    )
    environ = env(kill_grace="4", process_timeout="40")
    s = load_settings(config, {"process_timeout": 50.0}, environ)
    assert s.poll_interval == 2.0  # file only
    assert s.kill_grace == 4.0  # env over file
    assert s.process_timeout == 50.0  # flag over env and file
    assert s.retry_budget == 60.0  # default
    assert s.registry_api_token is not None
    assert s.registry_api_token.get_secret_value() == "file-token"


def test_flags_left_unset_do_not_hide_env_or_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'registry_api_url = "{URL}"\nregistry_api_token = "t"\n')
    s = load_settings(config, {"poll_interval": None, "host_os": None}, env(poll_interval="9"))
    assert s.poll_interval == 9.0
    assert s.host_os is None


def test_an_empty_env_variable_does_not_override_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'registry_api_url = "{URL}"\nregistry_api_token = "t"\n')
    s = load_settings(config, {}, env(registry_api_url=""))
    assert s.registry_url == URL


def test_env_names_are_case_insensitive_and_other_variables_are_ignored() -> None:
    environ = {
        "istari_digital_agent_poll_interval": "7",
        "ISTARI_DIGITAL_AGENT_NOT_A_SETTING": "x",
        "POLL_INTERVAL": "99",
    }
    s = load_settings(None, REQUIRED, environ)
    assert s.poll_interval == 7.0


def test_required_settings_can_come_from_env_alone() -> None:
    s = load_settings(None, {}, env(registry_api_url=URL, registry_api_token=TOKEN))
    assert s.registry_url == URL
    assert s.registry_api_token is not None
    assert s.registry_api_token.get_secret_value() == TOKEN


# The TOML file.


def test_toml_keys_with_and_without_the_official_prefix(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        f'istari_digital_agent_registry_api_url = "{URL}"\n'
        'istari_digital_agent_registry_api_token = "t"\n'
        "poll_interval = 3.5\n"
        "istari_digital_agent_keep_work_dirs = 'always'\n",
    )
    s = load_settings(config, {}, {})
    assert s.registry_url == URL
    assert s.poll_interval == 3.5
    assert s.keep_work_dirs is KeepWorkDirs.ALWAYS


def test_module_configurations_as_a_toml_table(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        f'registry_api_url = "{URL}"\nregistry_api_token = "t"\n'
        '[module_configurations."@acme:cad"]\nlicense_server = "27000@lic"\nseats = 2\n',
    )
    s = load_settings(config, {}, {})
    assert s.module_configurations == {"@acme:cad": {"license_server": "27000@lic", "seats": 2}}


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "pol_interval = 3\n")
    message = one_line_error(config, REQUIRED, {})
    assert "pol_interval: unknown setting" in message
    assert "config.example.toml" in message


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    message = one_line_error(missing, REQUIRED, {})
    assert message == f"config error: cannot read {missing}: No such file or directory"


def test_invalid_toml_is_named_with_its_position(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'registry_api_url = "{URL}\n')
    message = one_line_error(config, REQUIRED, {})
    assert f"{config} is not valid TOML" in message
    assert "line 1" in message


# Environment JSON.


def test_module_configurations_from_env_as_json() -> None:
    raw = '{"@acme:cad": {"license_server": "27000@lic", "flags": [1, 2]}}'
    s = load_settings(None, REQUIRED, env(module_configurations=raw))
    assert s.module_configurations == {
        "@acme:cad": {"license_server": "27000@lic", "flags": [1, 2]}
    }


def test_bad_json_in_env_names_the_variable() -> None:
    message = one_line_error(None, REQUIRED, env(module_configurations="{not json"))
    assert "ISTARI_DIGITAL_AGENT_MODULE_CONFIGURATIONS is not valid JSON" in message


def test_json_of_the_wrong_shape_names_the_setting() -> None:
    message = one_line_error(None, REQUIRED, env(module_configurations="[1, 2]"))
    assert message.startswith("config error: module_configurations: ")
    assert "$ISTARI_DIGITAL_AGENT_MODULE_CONFIGURATIONS" in message


# Error messages.


def test_missing_token_names_the_key_and_how_to_set_it() -> None:
    message = one_line_error(None, {"registry_api_url": URL}, {})
    assert message == (
        "config error: registry_api_token: required but not set; set `registry_api_token` "
        "in the config file or $ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN"
    )


def test_blank_token_is_refused() -> None:
    message = one_line_error(None, {"registry_api_url": URL, "registry_api_token": "  "}, {})
    assert message.startswith("config error: registry_api_token: ")
    assert "must not be empty" in message


def test_nothing_set_counts_the_other_problems() -> None:
    message = one_line_error(None, {}, {})
    assert "registry_api_url: required but not set (and 1 more problem(s))" in message


@pytest.mark.parametrize("value", ["0", "-1", "3601", "soon"])
def test_bad_poll_interval_names_the_key(value: str) -> None:
    message = one_line_error(None, REQUIRED, env(poll_interval=value))
    assert message.startswith("config error: poll_interval: ")
    assert message.endswith(
        "set `poll_interval` in the config file or $ISTARI_DIGITAL_AGENT_POLL_INTERVAL"
    )


def test_bad_choice_names_the_key() -> None:
    message = one_line_error(None, {**REQUIRED, "keep_work_dirs": "sometimes"}, {})
    assert message.startswith("config error: keep_work_dirs: ")


# Secrets.


def test_the_token_is_never_shown_in_repr_or_str() -> None:
    s = load_settings(None, REQUIRED, {})
    assert isinstance(s.registry_api_token, SecretStr)
    assert TOKEN not in repr(s)
    assert TOKEN not in str(s)
    assert TOKEN not in repr(Settings(**REQUIRED))
    assert s.registry_api_token.get_secret_value() == TOKEN


def test_the_token_is_never_shown_in_an_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'registry_api_token = "{TOKEN}"\npoll_interval = -1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config, {"registry_api_url": URL}, {})
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    with pytest.raises(ConfigError) as bad_json:
        load_settings(None, REQUIRED, env(module_configurations='{"x": "' + TOKEN))
    assert TOKEN not in str(bad_json.value)


# Built directly.


def test_built_directly_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISTARI_DIGITAL_AGENT_POLL_INTERVAL", "99")
    monkeypatch.setenv("ISTARI_DIGITAL_AGENT_HOST_OS", "RHEL 9")
    s = Settings(**REQUIRED)
    assert s.poll_interval == 5.0
    assert s.host_os is None


def test_built_directly_a_token_in_the_environment_does_not_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN", TOKEN)
    with pytest.raises(ValidationError, match="registry_api_token"):
        Settings(registry_api_url=URL)


def test_settings_are_frozen() -> None:
    s = Settings(**REQUIRED)
    with pytest.raises(ValidationError, match="frozen"):
        s.poll_interval = 1.0  # type: ignore[misc]
    assert s.poll_interval == 5.0


def needed(**values: str) -> dict[str, str]:
    """An environment with the required settings and `values`."""
    return env(REGISTRY_API_URL="http://registry.lab", REGISTRY_API_TOKEN="t", **values)


def test_agent_pools_from_env_are_comma_separated_and_from_toml_a_list(tmp_path: Path) -> None:
    from_env = load_settings(None, {}, needed(AGENT_POOLS=" gpu , render-farm,,"))
    assert from_env.agent_pools == ("gpu", "render-farm")
    config = write_toml(tmp_path, 'agent_pools = ["a", "b"]')
    assert load_settings(config, {}, needed()).agent_pools == ("a", "b")


def test_mqtt_settings_build_the_broker_with_the_password_kept_secret() -> None:
    settings = load_settings(
        None,
        {},
        needed(MQTT_URL="mqtts://broker.lab:8884", MQTT_USERNAME="agent", MQTT_PASSWORD="s3cret"),
    )
    broker = settings.broker
    assert broker is not None
    assert (broker.host, broker.port, broker.tls, broker.username) == (
        "broker.lab",
        8884,
        True,
        "agent",
    )
    assert broker.password == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(broker)
    assert load_settings(None, {}, needed()).broker is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker:1883", "must start with mqtt:// or mqtts://"),
        ("mqtt://agent:pw@broker", "put the MQTT password in its own setting"),
        ("mqtt://broker:99999", "port is not a number"),
        ("mqtt:///nohost", "mqtt://HOST[:PORT]"),
    ],
)
def test_a_bad_mqtt_url_names_the_key_and_the_problem(url: str, problem: str) -> None:
    line = one_line_error(None, {}, needed(MQTT_URL=url))
    assert line.startswith("config error: mqtt_url: ")
    assert problem in line
    assert "agent:pw" not in line


# Health and metrics address.


@pytest.mark.parametrize("address", ["127.0.0.1:9464", "[::1]:9464", "localhost:0"])
def test_http_address_on_loopback_is_accepted(address: str) -> None:
    settings = load_settings(None, {}, env(**{**REQUIRED, "http_address": address}))
    assert settings.http_address == address


def test_http_address_beyond_loopback_needs_http_public() -> None:
    values = {**REQUIRED, "http_address": "0.0.0.0:9464"}
    message = one_line_error(None, {}, env(**values))
    assert "http_address 0.0.0.0:9464 is reachable beyond this machine" in message
    assert "http_public = true" in message
    public = load_settings(None, {}, env(**values, http_public="true"))
    assert public.http_public


@pytest.mark.parametrize("address", ["9464", "127.0.0.1", "127.0.0.1:port", "127.0.0.1:70000"])
def test_a_malformed_http_address_says_what_is_expected(address: str) -> None:
    message = one_line_error(None, {}, env(**{**REQUIRED, "http_address": address}))
    assert "is not HOST:PORT (e.g. 127.0.0.1:9464)" in message


# Files holding secrets.


def test_a_config_holding_the_token_that_anyone_can_read_is_refused(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'registry_api_url = "{URL}"\nregistry_api_token = "{TOKEN}"\n')
    config.chmod(0o644)
    message = one_line_error(config, {}, {})
    assert f"{config} holds registry_api_token and users other than its owner" in message
    assert f"chmod 600 {config}" in message
    assert TOKEN not in message
    config.chmod(0o400)  # only its owner may read it: fine
    assert load_settings(config, {}, {}).registry_url == URL


def test_a_world_readable_config_without_secrets_is_fine(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "poll_interval = 7\n")
    config.chmod(0o644)
    settings = load_settings(config, {}, env(**REQUIRED))
    assert settings.poll_interval == 7
