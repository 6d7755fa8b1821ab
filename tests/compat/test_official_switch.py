"""The switch a user of the official agent makes, end to end (issue 21): `istari-agent` as a
real process whose only configuration is the official `istari_digital_config.yaml` under HOME
(both sections, every documented key), a module that asks for `agent_version: ">=11.0.0"`, and
the agent's status history read back through the official SDK.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.jobs.outcome import EXIT_CODES, Reason
from agent.protocol.states import AgentStatus
from tests.support.agentcli import agent, submit_job
from tests.support.registry import RegistryProcess
from tests.tools import module

# The SDK's v2 calls warn that they are deprecated (see test_sdk.py).
pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")

P = "istari_digital_agent_"
S = AgentStatus


def official_file(home: Path, reg: RegistryProcess, root: Path) -> None:
    """The official file as a user of the official agent has it, plus where this test keeps
    its modules and state (our own keys, beside theirs)."""
    config = {
        "default": {f"{P}registry_api_url": reg.url},
        "agent": {
            f"{P}registry_api_token": reg.token,
            f"{P}display_name": "switched agent",
            f"{P}log_level": "info",
            f"{P}module_configurations": {},
            f"{P}process_timeout": 120,
            f"{P}poll_interval": 1,
            f"{P}output_path": str(root / "work"),
            f"{P}headless_mode": True,
            f"{P}status_update_retry_limit": 5,
            f"{P}download_retry_limit": 5,
            f"{P}upload_retry_limit": 5,
            f"{P}upload_pool_size": 4,
            f"{P}private_key_path": "private_key.pem",
            "modules_path": str(root / "modules"),
            "state_path": str(root / "state"),
            "host_os": module.HOST_OS,
        },
    }
    path = home / ".config/istari_digital/istari_digital_config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def since_claim(history: list[Any]) -> list[str]:
    """The history from the last claim on, as status names."""
    names = [s.name for s in history]
    return names[len(names) - 1 - names[::-1].index(S.CLAIMING_JOB.value) :]


def test_a_user_of_the_official_agent_switches_with_the_same_file(
    sdk: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    target = module.install(tmp_path / "modules")
    manifest = target / "module_manifest.json"
    manifest.write_text(
        json.dumps({**json.loads(manifest.read_text()), "agent_version": ">=11.0.0"})
    )
    official_file(home, registry_process, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    env["HOME"] = str(home)

    runs: list[tuple[str, dict[str, Any], AgentStatus]] = [
        ("echo", {"label": "ok"}, S.EXECUTION_SUCCESS),
        ("exit", {"code": 3}, S.EXECUTION_FAILED),
    ]
    for behaviour, params, ended in runs:
        job_id = submit_job(registry_process, tmp_path, behaviour, params)
        done = agent(env, "run", "--until-idle")
        ok = ended is S.EXECUTION_SUCCESS
        reason = Reason.COMPLETED if ok else Reason.TOOL_FAILED
        assert done.returncode == EXIT_CODES[reason], done.stderr[-3000:]
        agent_id = json.loads((tmp_path / "state" / "agent.json").read_text())["agent_id"]
        final = sdk.get_job(job_id).status_history[-1].name
        assert final == ("Completed" if ok else "Failed")
        seen = since_claim(sdk.get_agent(agent_id).status_history)
        assert seen[0] == S.CLAIMING_JOB.value
        assert seen.index(S.EXECUTING_JOB.value) < seen.index(ended.value)
        # the job's end is seen on its own, then Idle, then Paused as the agent stopped
        assert seen[seen.index(ended.value) :] == [ended.value, S.IDLE.value, S.PAUSED.value]
    assert registry_process.token not in done.stderr + done.stdout
