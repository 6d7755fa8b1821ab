"""`istari-agent run --once` and `istari-agent check` as real processes: exit codes and messages."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.outcome import EXIT_CODES, Reason
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.agentcli import DEADLINE, agent, agent_env, running_agent, submit_job
from tests.support.registry import RegistryProcess
from tests.tools import module


def job_status(reg: RegistryProcess, job_id: str) -> JobStatus:
    async def go() -> JobStatus:
        async with RegistryClient(reg.url, reg.token) as client:
            return (await client.get_job(job_id)).status

    return asyncio.run(go())


@pytest.fixture
def env(registry_process: RegistryProcess, tmp_path: Path) -> dict[str, str]:
    module.install(tmp_path / "modules")
    return agent_env(registry_process, tmp_path)


@pytest.mark.parametrize(
    ("behaviour", "params", "reason"),
    [
        ("echo", {"label": "ok"}, Reason.COMPLETED),
        ("exit", {"code": 42}, Reason.TOOL_FAILED),
        ("echo", {}, Reason.INVALID_JOB),
    ],
)
def test_once_exits_with_the_outcome_code(
    registry_process: RegistryProcess,
    env: dict[str, str],
    tmp_path: Path,
    behaviour: str,
    params: dict[str, Any],
    reason: Reason,
) -> None:
    job_id = submit_job(registry_process, tmp_path, behaviour, params)
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[reason], done.stderr
    assert job_status(registry_process, job_id) is (
        JobStatus.COMPLETED if reason is Reason.COMPLETED else JobStatus.FAILED
    )
    assert agent(env, "run", "--once").returncode == 0  # nothing left: exit 0


def test_config_error_is_one_line_naming_the_key(env: dict[str, str]) -> None:
    env = {**env, "ISTARI_DIGITAL_AGENT_POLL_INTERVAL": "soon"}
    done = agent(env, "run", "--once")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("config error: poll_interval: ")
    assert "$ISTARI_DIGITAL_AGENT_POLL_INTERVAL" in lines[0]


def test_unreachable_registry_fails_once_with_agent_error(env: dict[str, str]) -> None:
    env = {
        **env,
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_URL": "http://127.0.0.1:9",
        "ISTARI_DIGITAL_AGENT_RETRY_BUDGET": "0.5",
    }
    done = agent(env, "run", "--once")
    assert done.returncode == EXIT_CODES[Reason.AGENT_ERROR]
    assert "error: POST /api/v2/agents failed" in done.stderr
    assert env["ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN"] not in done.stderr + done.stdout


async def test_sigterm_while_the_start_retries_an_unreachable_registry_exits_at_once(
    env: dict[str, str],
) -> None:
    env = {
        **env,
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_URL": "http://127.0.0.1:9",
        "ISTARI_DIGITAL_AGENT_RETRY_BUDGET": "600",  # far past the test's deadline
    }
    async with running_agent(env) as run:
        await run.wait_for("registry.retrying", what="register agent")
        run.process.send_signal(signal.SIGTERM)
        await run.wait_for("agent.stopped_while_starting")
        async with asyncio.timeout(DEADLINE):
            assert await run.process.wait() == 0  # a stop, not a failure: systemd reads 0


def test_check_reports_ready_then_a_broken_module(env: dict[str, str], tmp_path: Path) -> None:
    ok = agent(env, "check")
    assert ok.returncode == 0, ok.stdout
    assert "@test:behaviours 1.0.0" in ok.stdout
    assert "accepts the token" in ok.stdout
    assert ok.stdout.strip().endswith("ready to run jobs")

    broken = tmp_path / "modules" / "broken"
    broken.mkdir()
    (broken / "module_manifest.json").write_text('{"module_key": "@x:y", ')
    bad = agent({**env, "ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN": "wrong"}, "check")
    assert bad.returncode == 1
    assert f"{broken / 'module_manifest.json'}: (file): not valid JSON" in bad.stdout
    assert "refused the token" in bad.stdout
    assert "2 problem(s)" in bad.stdout
