"""The Slurm backend against a real single-node Slurm (munged, slurmctld, slurmd, started here).

A job runs through sbatch and its outputs are uploaded; a user's cancel reaches scancel and the
job leaves the queue; a job Slurm kills at its time limit fails saying so (slow: Slurm's
smallest limit is a minute).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.stopping import Stop
from tests.support.agent_harness import AgentHarness
from tests.support.agentcli import agent, agent_env, running_agent
from tests.support.gated import Setup
from tests.support.logwatch import eventually, watch_logs
from tests.support.registry import RegistryProcess
from tests.support.slurm import Slurm, missing
from tests.tools import module

pytestmark = pytest.mark.skipif(
    bool(missing()),
    reason=f"Slurm is not installed ({', '.join(missing())}); run scripts/system-packages",
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slurm(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Slurm]:
    cluster = Slurm(tmp_path_factory.mktemp("slurm"))
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


@pytest.fixture
def on_slurm(slurm: Slurm, monkeypatch: pytest.MonkeyPatch) -> Slurm:
    """The agent (and its tools) find the cluster through SLURM_CONF, as on a login node."""
    for key, value in slurm.env.items():
        monkeypatch.setenv(key, value)
    return slurm


async def test_a_job_runs_through_sbatch_and_its_outputs_are_uploaded(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    job = await harness.submit("echo", {"label": "via slurm"})
    with watch_logs() as logs:
        outcomes = await harness.run(executor="slurm", slurm_partition=on_slurm.partition)
    assert [o.reason for o in outcomes] == [Reason.COMPLETED], outcomes
    submitted = logs.find("slurm.submitted")
    assert len(submitted) == 1
    slurm_id = submitted[0]["slurm_job_id"]
    state = on_slurm.command("scontrol", "show", "job", "-o", slurm_id).stdout
    assert "JobState=COMPLETED" in state and f"WorkDir={harness.workdir(job) / 'tmp'}" in state
    assert "echo: copied part.txt" in (harness.workdir(job) / "job.log").read_text()
    record = harness.record(job)
    assert record["env"] and "SLURM_JOB_ID" in record["env"]  # it ran inside a Slurm job
    done = await harness.job(job.id)
    assert done.status is JobStatus.COMPLETED
    assert "copy (artifact" in (done.status_history[-1].message or "")


async def test_an_unknown_partition_fails_the_job_with_sbatchs_reason(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    await harness.submit("echo", {"label": "nowhere"})
    outcomes = await harness.run(executor="slurm", slurm_partition="no-such-partition")
    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED]
    assert outcomes[0].message.startswith("sbatch refused the job:")
    assert "partition" in outcomes[0].message.lower()


async def test_a_user_cancel_reaches_scancel_and_the_job_leaves_the_queue(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    job = await harness.submit("sleep", {"seconds": 120})
    stop = Stop()
    with watch_logs() as logs:
        agent = asyncio.create_task(
            harness.run(Mode.SERVE, stop=stop, executor="slurm", cancel_check_interval=0.2)
        )
        submitted = await logs.wait_for("slurm.submitted")
        slurm_id = submitted["slurm_job_id"]
        await eventually(
            lambda: "RUNNING" in on_slurm.command("squeue", "-h", "-j", slurm_id, "-o", "%T").stdout
        )
        await harness.client.update_job_status(job.id, JobStatus.CANCELED, None)
        finished = await logs.wait_for("job.finished", job_id=job.id, deadline=30)
        stop.request("test")
        await agent
    assert finished["reason"] == "canceled_by_user"
    assert logs.find("slurm.cancel", slurm_job_id=slurm_id, reason="canceled_by_user")
    assert on_slurm.command("squeue", "-h", "-j", slurm_id).stdout.strip() == ""  # gone
    state = on_slurm.command("scontrol", "show", "job", "-o", slurm_id).stdout
    # SIGTERM from `scancel --signal=TERM` ends the tool (FAILED), or scancel's kill (CANCELLED).
    assert "JobState=FAILED" in state or "JobState=CANCELLED" in state
    assert (await harness.job(job.id)).status_history[-1].name is JobStatus.CANCELED


@pytest.mark.slow
async def test_a_job_slurm_kills_at_its_time_limit_fails_saying_time_limit(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    job = await harness.submit("sleep", {"seconds": 600})
    outcomes = await harness.run(executor="slurm", process_timeout=60)  # --time=1 (minute)
    assert [o.reason for o in outcomes] == [Reason.TIMEOUT]
    assert "time limit" in outcomes[0].message
    failed = await harness.job(job.id)
    assert failed.status is JobStatus.FAILED
    assert "Slurm time limit" in (failed.status_history[-1].message or "")


async def test_an_agent_killed_while_its_slurm_job_runs_reattaches_and_reports_it(
    registry_process: RegistryProcess, on_slurm: Slurm, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    env = {
        **agent_env(registry_process, tmp_path),
        **on_slurm.env,
        "ISTARI_DIGITAL_AGENT_EXECUTOR": "slurm",
        "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "always",  # runs.txt is read afterwards
    }
    setup = Setup(registry_process, env, tmp_path)
    job = await setup.submit()
    async with setup.agent_with_tool_waiting(job) as run:  # the tool runs inside Slurm
        slurm_id = run.events_named("slurm.submitted")[0]["slurm_job_id"]
        run.process.send_signal(signal.SIGKILL)
        assert await run.process.wait() == -9
    queued = on_slurm.command("squeue", "-h", "-j", slurm_id, "-o", "%T").stdout.strip()
    assert queued == "RUNNING"  # Slurm runs it on without the agent

    async with running_agent(env) as run:
        await run.wait_for("job.tool_reattached", slurm_job_id=slurm_id)
        job.release()
        finished = await run.wait_for("job.finished", job_id=job.id)
    assert finished["status"] == "Completed"
    assert len(job.runs) == 1  # submitted once, by the first agent
    done = await setup.job(job.id)
    assert done.status is JobStatus.COMPLETED
    assert [e.name.value for e in done.status_history].count("Running") == 1


async def test_requests_the_cluster_cannot_meet_fail_the_job_with_slurms_reason(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    await harness.submit("echo", {"label": "too much memory"})
    refused = await harness.run(executor="slurm", slurm_memory_mb=10**9)  # sbatch says no
    assert [o.reason for o in refused] == [Reason.TOOL_FAILED]
    assert refused[0].message.startswith("sbatch refused the job:")
    assert "Memory specification can not be satisfied" in refused[0].message

    await harness.submit("echo", {"label": "too many cpus"})
    with watch_logs() as logs:  # sbatch takes it, but Slurm would keep it pending forever
        never = await harness.run(executor="slurm", slurm_cpus=4096)
    assert [o.reason for o in never] == [Reason.TOOL_FAILED]
    assert "was never started: Slurm keeps it pending for PartitionConfig" in never[0].message
    unrunnable = logs.find("slurm.unrunnable", reason="PartitionConfig")
    assert unrunnable
    slurm_id = unrunnable[0]["slurm_job_id"]
    assert on_slurm.command("squeue", "-h", "-j", slurm_id).stdout.strip() == ""  # cancelled


async def test_a_controller_restart_while_the_job_runs_is_waited_out(
    harness: AgentHarness, on_slurm: Slurm
) -> None:
    job = await harness.submit("gate", {"code": 0})
    gate = harness.workdir(job) / "tmp"
    stop = Stop()
    with watch_logs() as logs:
        agent = asyncio.create_task(harness.run(Mode.SERVE, stop=stop, executor="slurm"))
        await logs.wait_for("slurm.submitted")
        await eventually((gate / "runs.txt").exists)  # the tool runs on the node
        on_slurm.stop_controller()
        await logs.wait_for("slurm.unavailable", deadline=30)  # logged once, polling goes on
        await on_slurm.start_controller()
        await logs.wait_for("slurm.available", deadline=60)
        (gate / "go").touch()
        finished = await logs.wait_for("job.finished", job_id=job.id, deadline=60)
        stop.request("test")
        await agent
    assert finished["status"] == "Completed"
    assert len(logs.find("slurm.unavailable")) == 1


def test_check_says_whether_slurm_answers_and_knows_the_partition(
    registry_process: RegistryProcess, on_slurm: Slurm, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    env = {**agent_env(registry_process, tmp_path), **on_slurm.env}
    env["ISTARI_DIGITAL_AGENT_EXECUTOR"] = "slurm"
    ready = agent(env, "check")
    assert "slurm" in ready.stdout and "Slurm answers; partitions: debug" in ready.stdout
    env["ISTARI_DIGITAL_AGENT_SLURM_PARTITION"] = "nowhere"
    wrong = agent(env, "check")
    assert wrong.returncode == 1
    assert "set slurm_partition" in wrong.stdout or "sinfo failed" in wrong.stdout


async def test_a_job_canceled_while_the_agent_was_away_has_its_slurm_job_cancelled(
    registry_process: RegistryProcess, on_slurm: Slurm, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    env = {**agent_env(registry_process, tmp_path), **on_slurm.env}
    env["ISTARI_DIGITAL_AGENT_EXECUTOR"] = "slurm"
    setup = Setup(registry_process, env, tmp_path)
    job = await setup.submit()
    async with setup.agent_with_tool_waiting(job) as run:
        slurm_id = run.events_named("slurm.submitted")[0]["slurm_job_id"]
        run.process.send_signal(signal.SIGKILL)
        await run.process.wait()
    await setup.cancel(job.id)

    async with running_agent(env) as run:
        await run.wait_for("job.dropped", job_id=job.id, status="Canceled", tool_stopped=True)
    # scancel'ed: COMPLETING for a moment, then out of the queue
    await eventually(lambda: on_slurm.command("squeue", "-h", "-j", slurm_id).stdout.strip() == "")
    assert (
        "JobState=CANCELLED" in on_slurm.command("scontrol", "show", "job", "-o", slurm_id).stdout
    )
    assert [e.name.value for e in (await setup.job(job.id)).status_history][-1] == "Canceled"
