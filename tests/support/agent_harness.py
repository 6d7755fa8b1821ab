"""A real agent against a real local registry, in one event loop, with the test module installed."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import KeepWorkDirs, Settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.jobs.outcome import Outcome
from agent.localregistry.db import transaction
from agent.localregistry.server import RunningRegistry
from agent.localregistry.store.jobs import move
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job, Resource
from agent.registry.transfer import download_revision
from agent.reload import Reloader
from agent.service import serve
from agent.stopping import Stop
from agent.submit import Submission, submit
from agent.systemd import Systemd
from tests.tools import module


@dataclass
class AgentHarness:
    """Submit jobs, run the agent over them, read what it left in the registry."""

    registry: RunningRegistry
    client: RegistryClient
    root: Path
    registry_url: str = ""  # where the agent reaches the registry (a proxy, say)
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.modules_path = self.root / "modules"
        self.output_path = self.root / "work"
        module.install(self.modules_path)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "registry_api_url": self.registry_url or self.registry.url,
            "registry_api_token": self.registry.token,
            "modules_path": self.modules_path,
            "output_path": self.output_path,
            "state_path": self.root / "state",
            "host_os": module.HOST_OS,
            "poll_interval": 0.2,
            "process_timeout": 30,
            "kill_grace": 1,
            "keep_work_dirs": KeepWorkDirs.ALWAYS,
            "retry_budget": 5,
            "status_retry_budget": 10,
            **self.overrides,
            **overrides,
        }
        return Settings(**values)

    async def submit(
        self,
        behaviour: str,
        params: dict[str, Any] | None = None,
        *,
        model_name: str = "part.txt",
        content: bytes = b"hello model",
        pool_id: str | None = None,
        agent_id: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> Job:
        await self.client.publish_module(module.manifest())
        model = self.root / "models" / model_name
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(content)
        submission = Submission(
            model,
            module.fn(behaviour),
            params or {},
            pool_id=pool_id,
            agent_id=agent_id,
            credentials=credentials or {},
        )
        return await submit(self.client, submission)

    async def run(
        self,
        mode: Mode = Mode.UNTIL_IDLE,
        stop: Stop | None = None,
        systemd: Systemd | None = None,
        reloader: Reloader | None = None,
        **overrides: Any,
    ) -> list[Outcome]:
        env = tool_environment(os.environ)
        settings = self.settings(**overrides)
        return await serve(settings, env, mode, stop=stop, systemd=systemd, reloader=reloader)

    async def job(self, job_id: str) -> Job:
        return await self.client.get_job(job_id)

    async def artifacts(self, job: Job) -> dict[str, Resource]:
        """The artifacts on the job's model, by file name."""
        assert job.model_id is not None
        page = await self.client.list_artifacts(job.model_id)
        return {r.file.current.name or r.id: r for r in page.items}

    async def read(self, resource: Resource) -> bytes:
        dest = self.root / "downloads" / resource.id
        dest.parent.mkdir(parents=True, exist_ok=True)
        await download_revision(self.client, resource.file.current, dest)
        return dest.read_bytes()

    def cancel_when_uploading(self, job_id: str) -> None:
        """Cancel the job inside the registry, before it answers the job's Uploading report:
        every output the agent then sends is refused with 409, as with a cancel racing it."""
        conn = self.registry.registry.conn

        def listen(event: str, details: dict[str, Any]) -> None:
            if event == "job.status" and details["status"] == JobStatus.UPLOADING:
                with transaction(conn) as c:
                    move(c, job_id, JobStatus.CANCELED, None, "canceled by a user", "test")

        self.registry.registry.listeners.append(listen)

    def workdir(self, job: Job) -> Path:
        return self.output_path / job.id

    def record(self, job: Job) -> dict[str, Any]:
        """What the echo tool recorded about how it was run."""
        doc: dict[str, Any] = json.loads((self.workdir(job) / "tmp" / "record.json").read_text())
        return doc


async def wait_for_status(
    harness: AgentHarness, job_id: str, status: JobStatus, deadline: float = 15.0
) -> None:
    """Wait until the registry records `status` for the job (its own change event, no polling)."""
    reached = asyncio.Event()

    def listen(event: str, details: dict[str, Any]) -> None:
        if event == "job.status" and details["job_id"] == job_id and details["status"] == status:
            reached.set()

    listeners = harness.registry.registry.listeners
    listeners.append(listen)
    try:
        if (await harness.job(job_id)).status is not status:
            async with asyncio.timeout(deadline):
                await reached.wait()
    finally:
        listeners.remove(listen)


@asynccontextmanager
async def serving(harness: AgentHarness, **overrides: Any) -> AsyncIterator[list[Outcome]]:
    """Run the agent as a daemon for the block; drains it at the end (its outcomes fill in)."""
    stop = Stop()
    outcomes: list[Outcome] = []

    async def serve_until_stopped() -> None:
        outcomes.extend(await harness.run(Mode.SERVE, stop, **overrides))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(serve_until_stopped(), name="agent")
        try:
            yield outcomes
        finally:
            stop.request("the test is over")
