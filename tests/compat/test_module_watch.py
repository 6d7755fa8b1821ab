"""Modules that change while a real agent process runs (issue 22, item 3): a module copied
into `modules_path` serves the job that was waiting for it, an update is served from the next
job on while a running job keeps the files it was validated with, a broken update leaves the
version before it serving, and a removal stops serving; each change reads `UpdatingModule`
then `SuccessfulModuleUpdate` or `FailedModuleUpdate` in the agent's status history, read
back through the official SDK."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from agent.protocol.states import AgentStatus, JobStatus
from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.support.agentcli import AgentProcess, agent, agent_env, running_agent
from tests.support.logwatch import eventually, until
from tests.support.registry import RegistryProcess
from tests.tools import pinned

pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")

S = AgentStatus


class Jobs:
    """Submit `@test:pinned_data` jobs and read which module files each ran with."""

    def __init__(self, client: RegistryClient, root: Path) -> None:
        self.client, self.root = client, root
        self.model = root / "part.txt"
        self.model.write_text("model")

    async def submit(self, gate: bool = False) -> str:
        params = {"gate": True} if gate else {}
        return (await submit(self.client, Submission(self.model, pinned.FUNCTION, params))).id

    def temp(self, job_id: str) -> Path:
        return self.root / "work" / job_id / "tmp"

    async def ran_with(self, job_id: str) -> str:
        """The data file the job's tool read from its module, once the job Completed."""

        async def ended() -> bool:
            return (await self.client.get_job(job_id)).status in (
                JobStatus.COMPLETED, JobStatus.FAILED,
            )  # fmt: skip

        await until(ended, deadline=30)
        job = await self.client.get_job(job_id)
        assert job.status is JobStatus.COMPLETED, job.status_history[-1].message
        return (self.temp(job_id) / "data.txt").read_text()


async def reported(agent_process: AgentProcess, modules: list[str]) -> None:
    """Wait until the agent has told the registry it serves exactly `modules`."""
    await agent_process.wait_for("modules.reported", modules=modules)


async def test_modules_change_while_the_agent_runs(
    sdk: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    env = {
        **agent_env(registry_process, tmp_path),
        "ISTARI_DIGITAL_AGENT_PUBLISH_MODULES": "true",
        "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "always",
    }
    async with RegistryClient(registry_process.url, registry_process.token) as client:
        jobs = Jobs(client, tmp_path)
        await client.publish_module(pinned.manifest("1.0.0"))
        waiting = await jobs.submit()  # before any agent serves it
        async with running_agent(env) as running:
            await running.wait_for("modules.watching")
            staged = pinned.build(tmp_path / "staged", "1.0.0", "v1")

            # 1. Copied in while the agent runs: the waiting job is served within seconds.
            landed = time.monotonic()
            shutil.copytree(staged, modules / "pinned")
            await running.wait_for("job.claimed", job_id=waiting)
            assert time.monotonic() - landed < 10
            assert await jobs.ran_with(waiting) == "v1"

            # 2. An update while a job runs: that job keeps the files it was validated with.
            held = await jobs.submit(gate=True)
            await eventually(lambda: (jobs.temp(held) / "waiting").exists(), deadline=30)
            pinned.build(modules / "pinned", "1.0.1", "v2")  # in place, over the old files
            await reported(running, [f"{pinned.MODULE}@1.0.1"])
            (jobs.temp(held) / "go").touch()
            assert await jobs.ran_with(held) == "v1"
            assert await jobs.ran_with(await jobs.submit()) == "v2"  # the next job: the update

            # 3. A broken update: one clear message, the version before it still serves.
            (modules / "pinned" / "module_manifest.json").write_text("{ not json")
            failed = await running.wait_for("module.update_failed")
            assert failed["still_serving"] == f"{pinned.MODULE}@1.0.1"
            assert "not valid JSON" in failed["problem"]
            assert await jobs.ran_with(await jobs.submit()) == "v2"

            # 4. Repaired, then removed with the CLI: no longer served, nor reported.
            pinned.build(modules / "pinned", "1.0.2", "v3")
            await reported(running, [f"{pinned.MODULE}@1.0.2"])
            removed = await asyncio.to_thread(
                agent, env, "modules", "remove", pinned.MODULE, "--modules-path", str(modules)
            )
            assert removed.returncode == 0, removed.stderr
            await reported(running, [])
            assert not [e for e in running.events if e.get("level") == "error"]
            running.process.terminate()  # a clean stop: every status set is reported first
            assert await running.process.wait() == 0

        agent_id = json.loads((tmp_path / "state" / "agent.json").read_text())["agent_id"]
        history = [s.name for s in sdk.get_agent(agent_id).status_history]
    updates = [h for h in history if "ModuleUpdate" in h or h == S.UPDATING_MODULE.value]
    ok, updating, bad = S.SUCCESSFUL_MODULE_UPDATE, S.UPDATING_MODULE, S.FAILED_MODULE_UPDATE
    # added, updated, broken, repaired, removed: each UpdatingModule, then how it ended (an
    # edit made in place may be seen as two changes on a loaded machine: never fewer)
    assert updates[0::2] == [updating.value] * (len(updates) // 2)
    ends = updates[1::2]
    assert len(ends) >= 5 and ends.count(bad.value) == 1, updates
    assert ends[0] == ends[-1] == ok.value
    # the module was served (added) before the waiting job was claimed
    assert history.index(ok.value) < history.index(S.CLAIMING_JOB.value)
