"""Reloading the configuration: which changed settings apply live and which are refused (pure),
the reload task's answer and log lines, and what `istari-agent reload` prints of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent import control
from agent.cli_reload import describe
from agent.config import ConfigError, Settings
from agent.reload import (
    LIVE,
    Refused,
    Reloader,
    ReloadPlan,
    Source,
    credential_copy_note,
    diff_reload,
    why_refused,
)
from tests.support.logwatch import watch_logs

URL = "http://registry.test:8765"
TOKEN = "s3cret-token-never-shown"
BASE: dict[str, Any] = {"registry_api_url": URL, "registry_api_token": TOKEN}

# A new value for each setting a reload applies.
LIVE_CHANGES: dict[str, Any] = {
    "log_level": "debug",
    "poll_interval": 1.0,
    "push_poll_interval": 3.0,
    "push_poll_max_interval": 60.0,
    "max_concurrent_jobs": 4,
    "agent_pools": ("gpu", "night"),
    "module_configurations": {"@acme:cad": {"license": "27000@lic", "password": "hunter2"}},
    "min_free_memory_mb": 512,
    "max_load_per_cpu": 2.0,
    "drain_timeout": 120.0,
    "process_timeout": 30.0,
    "kill_grace": 2.0,
    "cancel_check_interval": 1.0,
    "keep_work_dirs": "always",
    "progress_report_interval": 0.0,
    "resource_sample_interval": 5.0,
    "max_work_dir_mb": 100.0,
    "max_log_upload_mb": 8.0,
    "upload_pool_size": 2,
    "download_retry_limit": 1,
    "upload_retry_limit": 1,
    "headless_mode": True,
    "allow_module_version_mismatch": True,
}

# A new value for settings a reload refuses, with a word its reason must hold.
REFUSED_CHANGES: dict[str, tuple[Any, str]] = {
    "registry_api_url": ("http://elsewhere.test:1", "registry session"),
    "registry_api_token": ("another-secret-token", "authenticated"),
    "registry_identity_url": ("http://id.test/", "authenticated"),
    "registry_ca_file": (Path("/etc/ca.pem"), "TLS"),
    "registry_tls_verify": (False, "TLS"),
    "state_path": (Path("/srv/state"), "lock"),
    "output_path": (Path("/srv/work"), "work directories"),
    "modules_path": (Path("/srv/modules"), "watched"),
    "watch_modules": (False, "watcher"),
    "host_os": ("RHEL 9", "registration"),
    "agent_version": ("9.9.9", "registration"),
    "display_name": ("renamed", "registration"),
    "executor": ("slurm", "backends"),
    "module_executors": ({"@acme:cad": "slurm"}, "backends"),
    "slurm_partition": ("long", "Slurm"),
    "mqtt_url": ("mqtt://broker.test:1883", "push connection"),
    "mqtt_password": ("broker-secret-pw", "push connection"),
    "http_address": ("127.0.0.1:9464", "HTTP listener"),
    "private_key_path": (Path("/srv/key.pem"), "key"),
    "retry_budget": (5.0, "status reporter"),
    "status_retry_budget": (5.0, "owed"),
    "run_retention_days": (1.0, "pruned"),
    "publish_modules": (True, "published"),
}


def settings(**changes: Any) -> Settings:
    return Settings(**{**BASE, **changes})


def test_the_allow_list_is_what_the_tests_change() -> None:
    assert set(LIVE) == set(LIVE_CHANGES)
    assert not set(LIVE) & set(REFUSED_CHANGES)
    assert set(LIVE) <= set(Settings.model_fields)


def test_nothing_changed_is_an_empty_plan() -> None:
    assert diff_reload(settings(), settings()) == ReloadPlan()


@pytest.mark.parametrize("name", sorted(LIVE_CHANGES))
def test_each_live_setting_is_applied(name: str) -> None:
    old, new = settings(), settings(**{name: LIVE_CHANGES[name]})
    plan = diff_reload(old, new)
    assert plan == ReloadPlan(changed=(name,), applied=(name,))
    assert getattr(plan.settings(old, new), name) == getattr(new, name)


@pytest.mark.parametrize("name", sorted(REFUSED_CHANGES))
def test_each_other_setting_is_refused_with_a_line_saying_why_and_what_to_do(name: str) -> None:
    value, why = REFUSED_CHANGES[name]
    old, new = settings(), settings(**{name: value})
    plan = diff_reload(old, new)
    assert plan.changed == (name,)
    assert plan.applied == ()
    (refused,) = plan.refused
    assert refused.setting == name
    assert refused.reason.startswith(f"{name} cannot change while the agent runs (")
    assert why in refused.reason
    assert refused.reason.endswith("restart it (systemctl restart istari-agent)")
    assert getattr(plan.settings(old, new), name) == getattr(old, name)  # the old one is kept


def test_every_setting_not_allowed_is_refused_with_a_reason() -> None:
    for name in set(Settings.model_fields) - set(LIVE):
        assert why_refused(name).startswith(f"{name} cannot change while the agent runs (")


def test_a_mixed_change_applies_the_allowed_and_keeps_the_rest() -> None:
    old = settings(max_concurrent_jobs=1, log_level="info")
    new = settings(max_concurrent_jobs=3, log_level="debug", registry_api_url="http://other.test/")
    plan = diff_reload(old, new)
    assert set(plan.changed) == {"max_concurrent_jobs", "log_level", "registry_api_url"}
    assert set(plan.applied) == {"max_concurrent_jobs", "log_level"}
    assert [r.setting for r in plan.refused] == ["registry_api_url"]
    swapped = plan.settings(old, new)
    assert swapped.max_concurrent_jobs == 3
    assert swapped.registry_url == URL
    assert swapped is not old  # a new frozen object; `old` is untouched
    assert old.max_concurrent_jobs == 1


def test_secrets_are_named_never_shown() -> None:
    secrets = ["another-secret-token", "broker-secret-pw", "hunter2", TOKEN]
    old = settings(module_configurations={"@acme:cad": {"password": "old-pw"}})
    new = settings(
        registry_api_token="another-secret-token",
        mqtt_url="mqtt://broker.test:1883",
        mqtt_password=SecretStr("broker-secret-pw"),
        module_configurations={"@acme:cad": {"password": "hunter2"}},
    )
    plan = diff_reload(old, new)
    assert "registry_api_token" in plan.changed
    assert "module_configurations" in plan.applied
    text = repr(plan) + json.dumps([r.reason for r in plan.refused])
    assert not [s for s in secrets if s in text]


def test_a_failed_change_moves_it_to_refused() -> None:
    plan = ReloadPlan(("agent_pools", "log_level"), ("agent_pools", "log_level"))
    why = "agent_pools kept as it was: no pool named x"
    refused = plan.refuse("agent_pools", why)
    assert refused.applied == ("log_level",)
    assert refused.refused == (Refused("agent_pools", why),)


class Target:
    """What a reload changes, as the daemon does it (a plain object: no registry here)."""

    def __init__(self, current: Settings) -> None:
        self.settings = current

    async def apply_reload(self, plan: ReloadPlan, new: Settings) -> ReloadPlan:
        self.settings = plan.settings(self.settings, new)
        return plan

    def describe(self) -> str:
        return "0 of 1 slots busy"


async def test_a_reload_applies_logs_and_answers_in_the_state_path(tmp_path: Path) -> None:
    levels: list[str] = []
    new = settings(state_path=tmp_path, log_level="debug", registry_api_url="http://b.test/")
    source = Source(load=lambda: new, log_level=levels.append, path=tmp_path / "agent.toml")
    reloader = Reloader(tmp_path, source)
    target = Target(settings(state_path=tmp_path))
    with watch_logs() as logs:
        answer = await reloader.once(target)
    assert target.settings.log_level == "debug"
    assert target.settings.registry_url == URL
    assert levels == ["debug"]
    line = logs.find("config.reloaded")[0]
    assert line["changed"] == ["registry_api_url", "log_level"]  # in the settings' order
    assert line["applied"] == ["log_level"]
    assert line["refused"][0]["setting"] == "registry_api_url"
    on_disk = control.read_reload_answer(tmp_path)
    assert on_disk == answer
    assert on_disk is not None
    assert on_disk["ok"] is True
    assert on_disk["seq"] == 1
    assert on_disk["started"] <= on_disk["finished"]
    assert (tmp_path / control.RELOAD_FILE).stat().st_mode & 0o777 == 0o600


async def test_a_configuration_that_cannot_be_used_is_refused_whole(tmp_path: Path) -> None:
    def broken() -> Settings:
        msg = "config error: poll_interval: Input should be a valid number; set `poll_interval`"
        raise ConfigError(msg)

    current = settings(state_path=tmp_path)
    target = Target(current)
    with watch_logs() as logs:
        answer = await Reloader(tmp_path, Source(load=broken)).once(target)
    assert target.settings is current  # nothing changed
    assert answer["ok"] is False
    assert answer["error"].startswith("config error: poll_interval")
    assert logs.find("config.reload_failed")[0]["error"] == answer["error"]
    assert not logs.find("config.reloaded")


async def test_without_a_source_a_reload_says_so_and_changes_nothing(tmp_path: Path) -> None:
    target = Target(settings(state_path=tmp_path))
    answer = await Reloader(tmp_path).once(target)
    assert answer["ok"] is False
    assert "not started from a configuration" in answer["error"]


def test_the_cli_prints_applied_and_refused_and_exits_by_outcome() -> None:
    answer = {
        "ok": True,
        "changed": ["log_level", "registry_api_url"],
        "applied": ["log_level"],
        "refused": [{"setting": "registry_api_url", "reason": why_refused("registry_api_url")}],
    }
    lines, code = describe(42, answer)
    assert lines[0] == "agent 42: configuration reloaded"
    assert "applied: log_level" in lines
    assert f"refused: {why_refused('registry_api_url')}" in lines
    assert code == 1
    lines, code = describe(42, {"ok": True, "changed": [], "applied": [], "refused": []})
    assert (lines, code) == (["agent 42: configuration reloaded: nothing changed"], 0)
    lines, code = describe(42, {"ok": False, "error": "config error: x"})
    assert code == 2
    assert "nothing changed" in lines[0]
    assert lines[0].endswith("config error: x")


def test_a_systemd_credential_copy_is_named_with_what_to_do() -> None:
    note = credential_copy_note(Path("/run/credentials/istari-agent.service/agent.toml"),
                                "/run/credentials/istari-agent.service")  # fmt: skip
    assert note is not None
    assert "RefreshOnReload=credentials" in note
    assert credential_copy_note(Path("/etc/istari-agent/agent.toml"), "/run/credentials/x") is None
    assert credential_copy_note(Path("/etc/istari-agent/agent.toml"), None) is None


async def test_the_note_goes_with_every_answer(tmp_path: Path) -> None:
    source = Source(load=lambda: settings(state_path=tmp_path), note="a copy: restart")
    answer = await Reloader(tmp_path, source).once(Target(settings(state_path=tmp_path)))
    assert answer["note"] == "a copy: restart"
    lines, code = describe(7, answer)
    assert lines == ["agent 7: configuration reloaded: nothing changed", "note: a copy: restart"]
    assert code == 0
