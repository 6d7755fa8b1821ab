"""`gate` jobs against a real registry process, and a real agent that runs them.

The `gate` tool notes each start in `runs.txt` and waits for a `go` file before it exits, so a
test can kill, detach or restart the agent while the tool is known to be waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.submit import Submission, submit
from tests.support.agentcli import AgentProcess, running_agent
from tests.support.logwatch import eventually
from tests.support.registry import RegistryProcess
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
    """A registry process, the agent environment and its root: gate jobs and a running agent."""

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
