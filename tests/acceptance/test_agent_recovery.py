"""A real agent process killed (`kill -9`) or detached mid-job, then started again.

The tool runs under its supervisor, outside the agent: it survives, and the restarted agent
re-attaches to it (or reads how it ended while the agent was away), uploads its outputs and
reports the job, without the tool ever running twice (the `gate` tool notes each start in
`runs.txt` and waits for a `go` file the test creates). A tool killed while the agent was
away fails the job saying so; a job canceled while the agent was away has its tool stopped
and nothing reported.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.protocol.states import JobStatus
from agent.registry.models import Job
from tests.support.agentcli import agent, agent_env, running_agent
from tests.support.gated import Setup
from tests.support.logwatch import eventually
from tests.support.processes import gone
from tests.support.registry import RegistryProcess
from tests.tools import module


@pytest.fixture
def setup(registry_process: RegistryProcess, tmp_path: Path) -> Setup:
    module.install(tmp_path / "modules")
    env = {
        **agent_env(registry_process, tmp_path),
        "ISTARI_DIGITAL_AGENT_KILL_GRACE": "0.5",
        "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "always",  # runs.txt is read afterwards
    }
    return Setup(registry_process, env, tmp_path)


def phases(job: Job) -> list[str]:
    return [e.name.value for e in job.status_history]


@pytest.mark.parametrize(
    ("released_while_away", "code"),
    [(False, 0), (True, 0), (True, 3)],
    ids=["waited", "ended", "failed"],
)
async def test_the_tool_outlives_kill_9_and_the_restarted_agent_finishes_the_job(
    setup: Setup, released_while_away: bool, code: int
) -> None:
    job = await setup.submit(code)
    async with setup.agent_with_tool_waiting(job) as run:
        run.process.send_signal(signal.SIGKILL)
        assert await run.process.wait() == -9
    supervisor = job.supervisor()
    assert supervisor.is_running()  # the tool runs on without the agent
    if released_while_away:
        job.release()
        await eventually(lambda: gone(supervisor.pid))

    async with running_agent(setup.env) as run:
        if not released_while_away:
            await run.wait_for("job.tool_reattached", job_id=job.id, pid=supervisor.pid)
            job.release()
        finished = await run.wait_for("job.finished", job_id=job.id)
    assert len(job.runs) == 1  # started once, by the first agent
    done = await setup.job(job.id)
    if code == 0:
        assert finished["status"] == "Completed"
        assert done.status is JobStatus.COMPLETED
        assert "out (artifact" in (done.status_history[-1].message or "")
    else:
        assert done.status is JobStatus.FAILED
        assert (done.status_history[-1].message or "").startswith("the tool exited with code 3")
    # The resumed job repeats no phase: one of each, in order, and one final status.
    expected = ["Running", "Uploading", "Completed"] if code == 0 else ["Running", "Failed"]
    assert phases(done)[-len(expected) :] == expected
    assert phases(done).count("Running") == 1, [
        (e.name.value, e.created) for e in done.status_history
    ]


async def test_a_tool_killed_while_the_agent_was_away_fails_the_job_saying_so(
    setup: Setup,
) -> None:
    job = await setup.submit()
    async with setup.agent_with_tool_waiting(job) as run:
        run.process.send_signal(signal.SIGKILL)
        await run.process.wait()
    supervisor = job.supervisor()
    for p in [supervisor, *supervisor.children(recursive=True)]:
        p.kill()  # the supervisor dies too: nothing is recorded
    await eventually(lambda: gone(supervisor.pid))

    async with running_agent(setup.env) as run:
        await run.wait_for("job.finished", job_id=job.id)
    done = await setup.job(job.id)
    assert done.status is JobStatus.FAILED
    message = done.status_history[-1].message or ""
    assert "ended while the agent was away without recording an exit status" in message
    assert len(job.runs) == 1


async def test_a_job_canceled_while_the_agent_was_away_has_its_tool_stopped(setup: Setup) -> None:
    job = await setup.submit()
    async with setup.agent_with_tool_waiting(job) as run:
        run.process.send_signal(signal.SIGKILL)
        await run.process.wait()
    supervisor = job.supervisor()
    tree = [supervisor, *supervisor.children(recursive=True)]
    await setup.cancel(job.id)

    async with running_agent(setup.env) as run:
        # Logged once the tree is stopped (SIGTERM, grace, SIGKILL) and the job forgotten.
        await run.wait_for("job.dropped", job_id=job.id, status="Canceled", tool_stopped=True)
    assert all(gone(p.pid) for p in tree)
    done = await setup.job(job.id)
    assert phases(done)[-1] == "Canceled"  # nothing reported after the cancel


async def test_stop_detach_leaves_the_tool_running_and_the_next_start_reattaches(
    setup: Setup,
) -> None:
    job = await setup.submit()
    async with setup.agent_with_tool_waiting(job) as run:
        stopped = agent(setup.env, "stop", "--detach")  # SIGUSR2 to the state path's agent
        assert stopped.returncode == 0, stopped.stderr
        assert f"agent {run.process.pid}: exiting now" in stopped.stdout
        await run.wait_for("job.detached", job_id=job.id, phase="Running")
        assert await run.process.wait() == 0
    supervisor = job.supervisor()
    assert supervisor.is_running()
    assert (await setup.job(job.id)).status is JobStatus.RUNNING  # nothing reported

    async with running_agent(setup.env) as run:
        await run.wait_for("job.tool_reattached", job_id=job.id, pid=supervisor.pid)
        job.release()
        finished = await run.wait_for("job.finished", job_id=job.id)
    assert finished["status"] == "Completed"
    assert len(job.runs) == 1
    nobody = agent(setup.env, "stop")
    assert nobody.returncode == 1
    assert "no agent is running with the state path" in nobody.stderr
