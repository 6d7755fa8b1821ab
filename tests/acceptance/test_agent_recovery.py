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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.submit import Submission, submit
from tests.acceptance.agentprocess import AgentProcess, running_agent
from tests.acceptance.test_agent_cli import agent, agent_env
from tests.conftest import RegistryProcess
from tests.integration.test_agent_lifecycle import gone
from tests.logwatch import eventually
from tests.tools import module


@dataclass
class Gated:
    """A submitted `gate` job and where its tool works."""

    id: str
    work: Path

    @property
    def runs(self) -> list[str]:
        """One line per start of the tool."""
        path = self.work / "tmp" / "runs.txt"
        return path.read_text().splitlines() if path.exists() else []

    def release(self) -> None:
        (self.work / "tmp" / "go").touch()

    def supervisor(self) -> psutil.Process:
        return psutil.Process(int((self.work / "supervisor" / "pid").read_text()))


@dataclass
class Setup:
    reg: RegistryProcess
    env: dict[str, str]
    root: Path

    async def submit(self, code: int = 0) -> Gated:
        async with RegistryClient(self.reg.url, self.reg.token) as client:
            await client.publish_module(module.manifest())
            model = self.root / "part.txt"
            model.write_text("model")
            job = await submit(client, Submission(model, module.fn("gate"), {"code": code}))
        return Gated(job.id, self.root / "work" / job.id)

    async def job(self, job_id: str) -> Job:
        async with RegistryClient(self.reg.url, self.reg.token) as client:
            return await client.get_job(job_id)

    async def cancel(self, job_id: str) -> None:
        async with RegistryClient(self.reg.url, self.reg.token) as client:
            await client.update_job_status(job_id, JobStatus.CANCELED, None)

    @asynccontextmanager
    async def agent_with_tool_waiting(self, job: Gated) -> AsyncIterator[AgentProcess]:
        async with running_agent(self.env) as run:
            await run.wait_for("job.tool_started", job_id=job.id)
            await eventually(lambda: len(job.runs) == 1)
            yield run


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
