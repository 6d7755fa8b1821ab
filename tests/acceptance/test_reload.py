"""`istari-agent reload` against a real agent process: the config file is edited while the agent
runs; what can change applies (a job claimed after the reload sees the new module configuration),
what cannot is refused with a line saying why, and a broken file is refused whole."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.agentcli import AgentProcess, agent, running_agent, submit_job
from tests.support.logwatch import until
from tests.support.registry import RegistryProcess
from tests.tools import module

P = "istari_digital_agent_"


def write_config(path: Path, reg: RegistryProcess, root: Path, **agent_keys: Any) -> None:
    """The official YAML file, everything in it (the environment sets nothing of the agent's)."""
    keys = {
        f"{P}registry_api_token": reg.token,
        f"{P}poll_interval": 0.5,
        f"{P}log_level": "info",
        "modules_path": str(root / "modules"),
        "output_path": str(root / "work"),
        "state_path": str(root / "state"),
        "host_os": module.HOST_OS,
        "retry_budget": 5,
        **agent_keys,
    }
    url = keys.pop("registry_api_url", reg.url)
    text = yaml.safe_dump({"default": {f"{P}registry_api_url": url}, "agent": keys})
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)  # as an editor saves it: the agent never reads half a file


@pytest.fixture
def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}


async def finished(client: RegistryClient, job_id: str) -> JobStatus:
    async def done() -> bool:
        return (await client.get_job(job_id)).status in (JobStatus.COMPLETED, JobStatus.FAILED)

    await until(done, deadline=30)
    return (await client.get_job(job_id)).status


async def config_seen_by(client: RegistryClient, job_id: str, tmp_path: Path) -> Any:
    """The module configuration the `show_config` job copied into its output."""
    job = await client.get_job(job_id)
    assert job.model_id is not None
    outputs = [
        a
        for a in (await client.list_artifacts(job.model_id)).items
        if a.file.current.name == "config-copy.json"
    ]
    (artifact,) = outputs
    token = artifact.file.current.content_token
    dest = tmp_path / f"{job_id}.json"
    download = await client.download_url(token.sha)
    await client.get_blob(download.url, dest, token.sha, token.salt)
    return json.loads(dest.read_text())


async def reload(env: dict[str, str], tmp_path: Path) -> tuple[int, str, str]:
    done = await asyncio.to_thread(agent, env, "reload", "--state-path", str(tmp_path / "state"))
    return done.returncode, done.stdout, done.stderr


async def started(proc: AgentProcess) -> str:
    return str((await proc.wait_for("agent.ready"))["agent_id"])


async def test_reload_applies_what_can_change_and_refuses_the_registry_url(
    registry_process: RegistryProcess, env: dict[str, str], tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    config = tmp_path / "istari_digital_config.yaml"
    old = {module.MODULE: {"license": "27000@old-server"}}
    write_config(config, registry_process, tmp_path, **{f"{P}module_configurations": old})
    async with (
        RegistryClient(registry_process.url, registry_process.token) as client,
        running_agent(env, "--config", str(config)) as proc,
    ):
        await started(proc)
        first = await asyncio.to_thread(submit_job, registry_process, tmp_path, "show_config", {})
        assert await finished(client, first) is JobStatus.COMPLETED
        assert await config_seen_by(client, first, tmp_path) == old[module.MODULE]

        new = {module.MODULE: {"license": "27000@new-server", "seats": 2}}
        write_config(
            config,
            registry_process,
            tmp_path,
            registry_api_url="http://127.0.0.1:9/",
            max_concurrent_jobs=2,
            **{f"{P}log_level": "debug", f"{P}module_configurations": new},
        )
        code, out, err = await reload(env, tmp_path)
        assert code == 1, out + err  # something was refused
        assert "configuration reloaded" in out
        applied = next(line for line in out.splitlines() if line.startswith("applied: "))
        assert set(applied.removeprefix("applied: ").split(", ")) == {
            "log_level",
            "max_concurrent_jobs",
            "module_configurations",
        }
        assert (
            "refused: registry_api_url cannot change while the agent runs (the registry session "
            "and the agent's registration are made at start): restart it "
            "(systemctl restart istari-agent)"
        ) in out.splitlines()
        line = await proc.wait_for("config.reloaded")
        assert [r["setting"] for r in line["refused"]] == ["registry_api_url"]
        assert line["file"] == str(config)

        status = await asyncio.to_thread(
            agent, env, "status", "--state-path", str(tmp_path / "state")
        )
        assert "of 2 slots busy" in status.stdout, status.stdout + status.stderr
        second = await asyncio.to_thread(submit_job, registry_process, tmp_path, "show_config", {})
        assert await finished(client, second) is JobStatus.COMPLETED  # the old URL still serves
        assert await config_seen_by(client, second, tmp_path) == new[module.MODULE]
        await proc.wait_for("dispatch.idle")  # at debug level now
        assert proc.process.returncode is None
        proc.process.terminate()
        assert await proc.process.wait() == 0
    assert registry_process.token not in out + err + json.dumps(proc.events)
    assert "new-server" not in out + json.dumps(proc.events_named("config.reloaded"))


async def test_a_broken_config_is_refused_whole_and_the_agent_goes_on(
    registry_process: RegistryProcess, env: dict[str, str], tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    config = tmp_path / "istari_digital_config.yaml"
    write_config(config, registry_process, tmp_path)
    async with (
        RegistryClient(registry_process.url, registry_process.token) as client,
        running_agent(env, "--config", str(config)) as proc,
    ):
        await started(proc)
        write_config(
            config,
            registry_process,
            tmp_path,
            max_concurrent_jobs=3,
            **{f"{P}poll_interval": "often"},
        )
        code, out, err = await reload(env, tmp_path)
        assert code == 2, out + err
        assert out.startswith("agent ")
        assert "configuration refused, nothing changed" in out
        assert "poll_interval" in out
        failed = await proc.wait_for("config.reload_failed")
        assert "poll_interval" in failed["error"]
        assert not proc.events_named("config.reloaded")

        job_id = await asyncio.to_thread(
            submit_job, registry_process, tmp_path, "echo", {"label": "after"}
        )
        assert await finished(client, job_id) is JobStatus.COMPLETED
        status = await asyncio.to_thread(
            agent, env, "status", "--state-path", str(tmp_path / "state")
        )
        assert "of 1 slots busy" in status.stdout  # the old settings still hold
        proc.process.terminate()
        assert await proc.process.wait() == 0


def test_reload_with_no_agent_running_exits_3(env: dict[str, str], tmp_path: Path) -> None:
    done = agent(env, "reload", "--state-path", str(tmp_path / "state"))
    assert done.returncode == 3
    assert "not running" in done.stderr
