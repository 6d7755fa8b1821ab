"""`istari-agent pause` / `resume` / `status` against a real agent process: a job submitted while
the agent is paused stays Pending (the registry offers it nothing), and runs after resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.protocol.states import AgentStatus, JobStatus
from agent.registry.client import RegistryClient
from tests.support.agentcli import agent, agent_env, running_agent, submit_job
from tests.support.logwatch import until
from tests.support.registry import RegistryProcess
from tests.tools import module


@pytest.fixture
def env(registry_process: RegistryProcess, tmp_path: Path) -> dict[str, str]:
    module.install(tmp_path / "modules")
    return {**agent_env(registry_process, tmp_path), "ISTARI_DIGITAL_AGENT_POLL_INTERVAL": "0.2"}


async def test_a_job_submitted_while_paused_stays_pending_and_runs_after_resume(
    registry_process: RegistryProcess, env: dict[str, str], tmp_path: Path
) -> None:
    paused = await asyncio.to_thread(agent, env, "pause")
    assert paused.returncode == 0, paused.stderr
    assert "starts paused" in paused.stdout
    async with (
        RegistryClient(registry_process.url, registry_process.token) as client,
        running_agent(env) as proc,
    ):
        ready = await proc.wait_for("agent.ready")
        agent_id = ready["agent_id"]

        async def agent_paused() -> bool:
            return (await client.get_agent(agent_id)).status_history[-1].name is AgentStatus.PAUSED

        await until(agent_paused)
        job_id = await asyncio.to_thread(
            submit_job, registry_process, tmp_path, "echo", {"label": "x"}
        )
        assert (await client.available_jobs(agent_id)).items == []  # the registry offers nothing
        status = await asyncio.to_thread(agent, env, "status")
        assert status.returncode == 0, status.stderr
        assert "paused by a person" in status.stdout
        assert (await client.get_job(job_id)).status is JobStatus.PENDING

        resumed = await asyncio.to_thread(agent, env, "resume")
        assert "resumed" in resumed.stdout, resumed.stderr
        await proc.wait_for("agent.unpaused")

        async def completed() -> bool:
            return (await client.get_job(job_id)).status is JobStatus.COMPLETED

        await until(completed)
        status = await asyncio.to_thread(agent, env, "status")
        assert "claiming jobs" in status.stdout
        proc.process.terminate()  # SIGTERM: a drain, then the last snapshot says it stopped
        await proc.process.wait()
    gone = await asyncio.to_thread(agent, env, "status")
    assert gone.returncode == 3
    assert json.loads((tmp_path / "state" / "status.json").read_text())["stopped"] is True


async def test_a_pause_while_a_job_runs_lets_it_finish_and_claims_nothing_new(
    registry_process: RegistryProcess, env: dict[str, str], tmp_path: Path
) -> None:
    async with (
        RegistryClient(registry_process.url, registry_process.token) as client,
        running_agent(env) as proc,
    ):
        agent_id = (await proc.wait_for("agent.ready"))["agent_id"]
        job_id = await asyncio.to_thread(
            submit_job, registry_process, tmp_path, "gate", {"code": 0}
        )

        async def job_is(status: JobStatus) -> bool:
            return (await client.get_job(job_id)).status is status

        await until(lambda: job_is(JobStatus.RUNNING))
        paused = await asyncio.to_thread(agent, env, "pause")
        assert paused.returncode == 0, paused.stderr
        await proc.wait_for("agent.paused", running=1)
        second = await asyncio.to_thread(
            submit_job, registry_process, tmp_path, "echo", {"label": "y"}
        )
        (tmp_path / "work" / job_id / "tmp" / "go").touch()  # the running job goes on
        await until(lambda: job_is(JobStatus.COMPLETED))

        async def history() -> list[AgentStatus]:
            return [s.name for s in (await client.get_agent(agent_id)).status_history]

        async def rests_paused() -> bool:
            return (await history())[-2:] == [AgentStatus.EXECUTION_SUCCESS, AgentStatus.PAUSED]

        await until(rests_paused)
        assert (await client.get_job(second)).status is JobStatus.PENDING  # nothing new claimed
        seen = await history()
        since_claim = seen[seen.index(AgentStatus.CLAIMING_JOB) :]
        assert AgentStatus.PAUSED in since_claim[: since_claim.index(AgentStatus.EXECUTION_SUCCESS)]
        assert AgentStatus.IDLE not in since_claim
        assert proc.events_named("job.claimed") and len(proc.events_named("job.claimed")) == 1
        proc.process.terminate()
        await proc.process.wait()
