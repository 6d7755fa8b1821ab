"""A user of the official agent switches: `istari-agent` as a real process, configured only by
the official `istari_digital_config.yaml` under HOME; the first-run template; `init`.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.jobs.outcome import EXIT_CODES, Reason
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.agentcli import agent, submit_job
from tests.support.registry import RegistryProcess
from tests.tools import module

P = "istari_digital_agent_"


def job_status(reg: RegistryProcess, job_id: str) -> JobStatus:
    async def go() -> JobStatus:
        async with RegistryClient(reg.url, reg.token) as client:
            return (await client.get_job(job_id)).status

    return asyncio.run(go())


def home_env(home: Path) -> dict[str, str]:
    """The environment of a user whose only configuration is the file under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    return {**env, "HOME": str(home)}


def official_path(home: Path) -> Path:
    return home / ".config/istari_digital/istari_digital_config.yaml"


def events(stderr: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def our_keys(root: Path) -> dict[str, str]:
    """Where this test's agent keeps things (our own keys, beside the official ones)."""
    return {
        "modules_path": str(root / "modules"),
        "state_path": str(root / "state"),
        "host_os": module.HOST_OS,
        "retry_budget": "5",
    }


def test_an_official_yaml_with_every_documented_key_registers_and_runs_jobs(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    module.install(tmp_path / "modules")
    config = {
        "default": {f"{P}registry_api_url": registry_process.url},
        "agent": {
            f"{P}registry_api_token": registry_process.token,
            f"{P}display_name": "switched agent",
            f"{P}log_level": "debug",
            f"{P}module_configurations": {"@other:module": {"license": "27000@lic"}},
            f"{P}process_timeout": 120,
            f"{P}poll_interval": 1,
            f"{P}output_path": str(tmp_path / "work"),
            f"{P}headless_mode": True,
            f"{P}status_update_retry_limit": 5,
            f"{P}download_retry_limit": 5,
            f"{P}upload_retry_limit": 5,
            f"{P}upload_pool_size": 2,
            f"{P}private_key_path": "private_key.pem",
            "istari_agent_poll_interval": 1,  # a legacy key: read, with a warning
            **our_keys(tmp_path),
        },
        "cli": {
            "istari_digital_registry_url": registry_process.url,
            "istari_digital_registry_auth_token": "the-cli-token",
        },
    }
    path = official_path(home)
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    env = home_env(home)

    good = submit_job(registry_process, tmp_path, "echo", {"label": "ok"})
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[Reason.COMPLETED], done.stderr[-3000:]
    assert job_status(registry_process, good) is JobStatus.COMPLETED
    bad = submit_job(registry_process, tmp_path, "exit", {"code": 3})
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[Reason.TOOL_FAILED], done.stderr[-3000:]
    assert job_status(registry_process, bad) is JobStatus.FAILED

    seen = events(done.stderr)
    names = {e["event"] for e in seen}
    assert "config.headless_mode" in names  # said once, at debug level
    legacy = [e for e in seen if e["event"] == "config.legacy_key"]
    assert [e["new_key"] for e in legacy] == [f"{P}poll_interval"]
    assert (path.parent / "private_key.pem").exists()  # relative: beside the file
    assert (tmp_path / "work").is_dir()
    assert registry_process.token not in done.stderr + done.stdout


def test_first_run_writes_the_template_then_init_fills_it_in(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    module.install(tmp_path / "modules")
    env = home_env(home)

    first = agent(env, "run", "--once")
    path = official_path(home)
    assert first.returncode == 78, first.stderr
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1, first.stderr
    assert str(path) in lines[0]
    assert f"{P}registry_api_token" in lines[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    again = agent(env, "run", "--once")  # the template, unfilled
    assert again.returncode == 2
    assert "placeholder" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    # A `cli:` section someone wrote with stari stays as it is.
    with path.open("a") as f:
        f.write("cli:\n  istari_digital_registry_url: https://cli.example\n")
    token_file = tmp_path / "token.txt"
    token_file.write_text(registry_process.token + "\n")
    init = agent(env, "init", registry_process.url, str(token_file))
    assert init.returncode == 0, init.stderr
    assert registry_process.token not in init.stdout + init.stderr
    data = yaml.safe_load(path.read_text())
    assert data["cli"] == {"istari_digital_registry_url": "https://cli.example"}
    assert data["agent"][f"{P}registry_api_token"] == registry_process.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    env |= {f"ISTARI_DIGITAL_AGENT_{k.upper()}": v for k, v in our_keys(tmp_path).items()}
    env["ISTARI_DIGITAL_AGENT_OUTPUT_PATH"] = str(tmp_path / "work")  # env beats the file
    job = submit_job(registry_process, tmp_path, "echo", {"label": "ok"})
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[Reason.COMPLETED], done.stderr[-3000:]
    assert job_status(registry_process, job) is JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("agent: [1, 2]\n", "section `agent:` must be a mapping"),
        ("agent:\n  poll_intervall: 3\n", "did you mean `poll_interval`?"),
        ("default:\n  a: 1\n   b: 2\n", "line 3 is not valid YAML"),
    ],
)
def test_a_bad_official_file_is_one_line_and_exit_2(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = official_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(body)
    done = agent(home_env(tmp_path), "check")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0]
    assert expected in lines[0]
