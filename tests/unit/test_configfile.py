"""The official configuration file: locations, YAML sections, key names, template, init."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import yaml

from agent import configfile
from agent.cli_config import NO_CONFIG, find_config
from agent.concurrently import all_of
from agent.config import ConfigError, Settings, load_config, load_settings
from agent.configwrite import PLACEHOLDER_TOKEN, TEMPLATE, init, write_template
from agent.registry.errors import RegistryUnavailable
from agent.registry.retry import with_retries

URL = "http://registry.test:8765"
TOKEN = "s3cret-token-never-shown"
P = "istari_digital_agent_"

# Every key in the official docs' example, with a value other than its default.
OFFICIAL = f"""\
default:
  {P}registry_api_url: "{URL}"
agent:
  {P}registry_api_token: "{TOKEN}"
  {P}display_name: "lab agent"
  {P}log_level: "debug"
  {P}module_configurations:
    "@acme:cad": {{license_server: "27000@lic"}}
  {P}process_timeout: 1200
  {P}poll_interval: 2
  {P}output_path: "/srv/out/"
  {P}headless_mode: true
  {P}status_update_retry_limit: 3
  {P}download_retry_limit: 2
  {P}upload_retry_limit: 1
  {P}upload_pool_size: 8
  {P}private_key_path: "/etc/istari/private_key.pem"
cli:
  istari_digital_registry_url: "https://elsewhere"
  istari_digital_registry_auth_token: "the-cli-token"
"""


def write(path: Path, body: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(mode)
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, {}, env or {})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config error: ")
    return message


def test_every_documented_key_is_read_from_the_official_yaml(tmp_path: Path) -> None:
    s, notices = load_config(write(tmp_path / "c.yaml", OFFICIAL), {}, {})
    assert notices == []
    assert s.registry_url == URL
    assert s.registry_api_token is not None
    assert s.registry_api_token.get_secret_value() == TOKEN  # not the cli: section's
    assert (s.display_name, s.log_level) == ("lab agent", "debug")
    assert s.module_configurations == {"@acme:cad": {"license_server": "27000@lic"}}
    assert (s.process_timeout, s.poll_interval) == (1200, 2)
    assert s.output_path == Path("/srv/out")
    assert s.headless_mode is True
    assert (s.status_update_retry_limit, s.download_retry_limit) == (3, 2)
    assert (s.upload_retry_limit, s.upload_pool_size) == (1, 8)
    assert s.agent_key_path == Path("/etc/istari/private_key.pem")


def test_the_template_holds_every_documented_key_with_its_default(tmp_path: Path) -> None:
    data = yaml.safe_load(TEMPLATE)
    official = yaml.safe_load(OFFICIAL)
    assert {s: set(data[s]) for s in ("default", "agent")} == {
        s: set(official[s]) for s in ("default", "agent")
    }
    defaults = Settings(registry_api_url="http://x", registry_api_token="t")
    for key, value in data["agent"].items():
        name = key.removeprefix(P)
        if name not in ("registry_api_token", "display_name", "private_key_path", "output_path"):
            assert getattr(defaults, name) == value, name


def test_precedence_defaults_then_yaml_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", OFFICIAL)
    assert load_settings(path, {}, {}).poll_interval == 2
    env = {"ISTARI_DIGITAL_AGENT_POLL_INTERVAL": "3"}
    assert load_settings(path, {}, env).poll_interval == 3
    assert load_settings(path, {"poll_interval": 4.0}, env).poll_interval == 4
    assert load_settings(path, {"poll_interval": None}, env).poll_interval == 3
    assert load_settings(path, {}, {}).process_timeout == 1200  # the rest still from the file


def test_agent_section_beats_default_section_and_flat_keys(tmp_path: Path) -> None:
    body = (
        f"{P}poll_interval: 7\n"
        f"default:\n  {P}registry_api_url: {URL}\n  {P}poll_interval: 8\n"
        f"agent:\n  {P}registry_api_token: t\n  {P}poll_interval: 9\n"
    )
    assert load_settings(write(tmp_path / "c.yaml", body), {}, {}).poll_interval == 9


def test_our_own_keys_work_in_the_yaml_too(tmp_path: Path) -> None:
    body = f"default:\n  {P}registry_api_url: {URL}\nagent:\n  {P}registry_api_token: t\n"
    body += "  max_concurrent_jobs: 3\n  agent_pools: [a, b]\n"
    s = load_settings(write(tmp_path / "c.yml", body), {}, {})
    assert (s.max_concurrent_jobs, s.agent_pools) == (3, ("a", "b"))


def test_legacy_keys_are_read_with_a_warning_naming_the_new_key(tmp_path: Path) -> None:
    body = f"default:\n  istari_agent_registry_api_url: {URL}\nagent:\n"
    body += "  istari_agent_registry_api_token: t\n  istari_agent_private_key_path: k.pem\n"
    s, notices = load_config(write(tmp_path / "c.yaml", body), {}, {})
    assert s.registry_url == URL
    assert s.agent_key_path == tmp_path / "k.pem"  # relative: from the file's directory
    assert {n.event for n in notices} == {"config.legacy_key"}
    by_key = {n.fields["key"]: n.fields["new_key"] for n in notices}
    assert by_key["agent.istari_agent_private_key_path"] == f"{P}private_key_path"


def test_an_unknown_official_key_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    body = OFFICIAL.replace("agent:\n", f"agent:\n  {P}tray_colour: blue\n", 1)
    s, notices = load_config(write(tmp_path / "c.yaml", body), {}, {})
    assert s.registry_url == URL
    assert [(n.event, n.fields["key"]) for n in notices] == [
        ("config.unknown_official_key", f"agent.{P}tray_colour")
    ]


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("pol_interval", "poll_interval"), ("agnet", "agent"), ("upload_pool", "upload_pool_size")],
)
def test_a_key_nobody_knows_is_refused_with_the_closest_known_key(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    message = error_of(write(tmp_path / "c.yaml", f"{key}: 3\n"))
    assert f"{key}: unknown setting in {tmp_path / 'c.yaml'}" in message
    assert f"did you mean `{suggestion}`?" in message


def test_yaml_that_does_not_parse_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", f"default:\n  {P}registry_api_url: [unclosed\nagent: x\n")
    message = error_of(path)
    assert f"{path} line " in message
    assert "is not valid YAML" in message


@pytest.mark.parametrize(("body", "what"), [("agent: [1, 2]\n", "list"), ("default: 3\n", "int")])
def test_a_section_of_the_wrong_type_is_named(tmp_path: Path, body: str, what: str) -> None:
    path = write(tmp_path / "c.yaml", body)
    message = error_of(path)
    assert f"{path}: section `{body.split(':')[0]}:` must be a mapping" in message
    assert what in message


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "must hold a mapping" in error_of(write(tmp_path / "c.yaml", "- a\n- b\n"))


def test_a_world_readable_yaml_holding_the_token_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", OFFICIAL, mode=0o644)
    message = error_of(path)
    assert f"chmod 600 {path}" in message
    assert TOKEN not in message


def test_an_unknown_section_is_a_warning_with_the_closest_section(tmp_path: Path) -> None:
    body = OFFICIAL + f"agnet:\n  {P}poll_interval: 1\n"
    s, notices = load_config(write(tmp_path / "c.yaml", body), {}, {})
    assert s.poll_interval == 2
    assert [(n.event, n.fields["section"], n.fields["did_you_mean"]) for n in notices] == [
        ("config.unknown_section", "agnet", "agent")
    ]


def test_the_cli_section_is_never_read(tmp_path: Path) -> None:
    body = f"cli:\n  anything: [goes]\nagent:\n  {P}registry_api_token: t\n"
    body += f"  {P}registry_api_url: {URL}\n"
    assert load_settings(write(tmp_path / "c.yaml", body), {}, {}).registry_url == URL


# Locations.


@pytest.mark.parametrize("name", configfile.FILE_NAMES)
def test_each_official_spelling_is_found_on_linux(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / ".config/istari_digital" / name, OFFICIAL)
    assert configfile.discover(tmp_path, "linux", legacy=()) == (path, False)


def test_the_canonical_name_wins_over_the_loose_spellings(tmp_path: Path) -> None:
    for name in reversed(configfile.FILE_NAMES):
        write(tmp_path / ".config/istari_digital" / name, OFFICIAL)
    found, _ = configfile.discover(tmp_path, "linux", legacy=())
    assert found is not None and found.name == "istari_digital_config.yaml"


def test_macos_location(tmp_path: Path) -> None:
    path = write(tmp_path / "Library/Application Support/istari_digital" / "x", "")
    path = write(path.with_name("istari_digital_config.yaml"), OFFICIAL)
    assert configfile.discover(tmp_path, "darwin", legacy=()) == (path, False)
    assert configfile.discover(tmp_path, "linux", legacy=()) == (None, False)


def test_a_pre_8_3_location_is_found_last_and_marked_legacy(tmp_path: Path) -> None:
    legacy = write(tmp_path / "opt/.istari_config", OFFICIAL)
    assert configfile.discover(tmp_path, "linux", legacy=[legacy]) == (legacy, True)
    new = write(tmp_path / ".config/istari_digital/istari_digital_config.yaml", OFFICIAL)
    assert configfile.discover(tmp_path, "linux", legacy=[legacy]) == (new, False)
    assert load_settings(legacy, {}, {}).registry_url == URL  # the same YAML format


def test_given_file_wins_over_discovery(tmp_path: Path) -> None:
    write(tmp_path / ".config/istari_digital/istari_digital_config.yaml", OFFICIAL)
    given = tmp_path / "mine.toml"
    assert find_config(given, {"HOME": str(tmp_path)}, "linux") == (given, [])


def test_environment_alone_needs_no_file_and_writes_no_template(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), f"{P}REGISTRY_API_TOKEN".upper(): "t"}
    assert find_config(None, env, "linux") == (None, [])
    assert not (tmp_path / ".config").exists()


# No configuration: the template.


def test_no_configuration_writes_the_template_and_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        find_config(None, {"HOME": str(tmp_path)}, "linux")
    assert info.value.code == NO_CONFIG == 78
    path = tmp_path / ".config/istari_digital/istari_digital_config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == TEMPLATE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert f"{P}registry_api_token" in lines[0]


def test_the_unfilled_template_is_refused_saying_what_to_fill_in(tmp_path: Path) -> None:
    path = tmp_path / "istari_digital_config.yaml"
    write_template(path)
    message = error_of(path)
    assert "placeholder" in message
    assert "istari-agent init" in message
    assert PLACEHOLDER_TOKEN in path.read_text()
    with pytest.raises(ConfigError):
        write_template(path)  # never over a file


# init.


def test_init_writes_url_and_token_keeping_other_sections(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "cli:\n  istari_digital_registry_url: https://cli\n"
        "lab:\n  notes: keep me\n"
        f"agent:\n  {P}poll_interval: 9\n  {P}registry_api_token: old\n",
        mode=0o644,
    )
    init(path, URL, f"{TOKEN}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = yaml.safe_load(path.read_text())
    assert data["cli"] == {"istari_digital_registry_url": "https://cli"}
    assert data["lab"] == {"notes": "keep me"}
    assert data["default"] == {f"{P}registry_api_url": URL}
    assert data["agent"] == {f"{P}poll_interval": 9, f"{P}registry_api_token": TOKEN}
    assert load_settings(path, {}, {}).poll_interval == 9


def test_init_creates_the_file_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new/dir/istari_digital_config.yaml"
    init(path, URL, TOKEN)
    assert load_settings(path, {}, {}).registry_url == URL


@pytest.mark.parametrize("body", ["agent: [1]\n", "default: [\n"])
def test_init_leaves_a_bad_file_as_it_is(tmp_path: Path, body: str) -> None:
    path = write(tmp_path / "c.yaml", body)
    with pytest.raises(ConfigError):
        init(path, URL, TOKEN)
    assert path.read_text() == body


def test_init_refuses_an_empty_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token file is empty"):
        init(tmp_path / "c.yaml", URL, "\n")
    assert not (tmp_path / "c.yaml").exists()


# What the retry limits and the pool size do.


@pytest.mark.parametrize(
    ("retries", "budget", "calls"), [(2, 30.0, 3), (0, 30.0, 1), (50, 0.3, None)]
)
async def test_retry_limit_and_time_budget_whichever_comes_first(
    retries: int, budget: float, calls: int | None
) -> None:
    count = 0

    async def failing() -> None:
        nonlocal count
        count += 1
        msg = "down"
        raise RegistryUnavailable(msg)

    with pytest.raises(RegistryUnavailable):
        await with_retries(failing, budget=budget, what="x", retries=retries)
    if calls is not None:
        assert count == calls
    else:
        assert 1 < count < 51  # the budget stopped it first


async def test_all_of_runs_at_most_the_pool_size_at_once() -> None:
    running, most = 0, 0

    async def one(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return i

    assert await all_of((one(i) for i in range(10)), limit=3) == list(range(10))
    assert most == 3
