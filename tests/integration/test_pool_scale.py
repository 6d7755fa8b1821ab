"""A pool at scale: 20 agents, one pool, 500 jobs, push wake-ups; every job runs exactly once.

The agents share one event loop with the registry (a real broker between them), which is
harsher on claim races than separate processes: all 20 are woken by each notice at once.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from agent.config import KeepWorkDirs, Settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.localregistry.server import RunningRegistry
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.transfer import upload_revision
from agent.service import serve
from agent.stopping import Stop
from tests.support.mosquitto import Mosquitto
from tests.support.push import mqtt_settings
from tests.tools import ledger
from tests.tools.module import HOST_OS

AGENTS = 20
JOBS = 500
DEADLINE = 300.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(DEADLINE + 60)]


async def submit_all(client: RegistryClient, root: Path, pool_id: str) -> list[str]:
    """Submit JOBS ledger jobs to the pool, spread over a few models.

    A model's wire document lists all its artifacts, and every job adds one, so a single
    model would make each job's model read grow with the run (see benchmarks/README.md).
    """
    await client.publish_module(ledger.manifest())
    part = root / "part.txt"
    part.write_text("a model")
    models = [await client.create_model(await upload_revision(client, part)) for _ in range(10)]
    params = root / "parameters.json"
    params.write_text("{}")
    revision = await upload_revision(client, params)
    jobs = []
    for n in range(JOBS):
        job = await client.submit_job(
            models[n % len(models)].id, ledger.FUNCTION, revision, assigned_agent_pool_id=pool_id
        )
        jobs.append(job.id)
    return jobs


async def test_twenty_agents_in_one_pool_run_500_jobs_exactly_once(
    push_registry: RunningRegistry, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    module_dir = ledger.install(modules)
    completed: set[str] = set()
    all_done = asyncio.Event()

    def count(event: str, details: dict[str, Any]) -> None:
        if event == "job.status" and details["status"] == JobStatus.COMPLETED:
            completed.add(details["job_id"])
            if len(completed) == JOBS:
                all_done.set()

    push_registry.registry.listeners.append(count)
    async with RegistryClient(push_registry.url, push_registry.token) as client:
        pool = await client.create_pool("scale", "20 agents")

        def settings(n: int) -> Settings:
            return Settings(
                registry_api_url=push_registry.url,
                registry_api_token=push_registry.token,
                modules_path=modules,
                output_path=tmp_path / "work",
                state_path=tmp_path / f"agent-{n}",
                host_os=HOST_OS,
                poll_interval=1.0,
                keep_work_dirs=KeepWorkDirs.NEVER,
                agent_pools=(pool.id,),
                **mqtt_settings(mosquitto),
            )

        stop = Stop()
        env = tool_environment(os.environ)
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(asyncio.TaskGroup())
            stack.callback(stop.request, "the test is over")
            for n in range(AGENTS):
                tg.create_task(serve(settings(n), env, Mode.SERVE, stop=stop))
            jobs = await submit_all(client, tmp_path, pool.id)
            async with asyncio.timeout(DEADLINE):
                await all_done.wait()

        runs = ledger.runs(module_dir)
        assert Counter(runs) == Counter(jobs)  # every job ran, none twice
        claims: Counter[str | None] = Counter()
        for job_id in jobs:
            job = await client.get_job(job_id)
            assert job.status is JobStatus.COMPLETED
            assert [s.name for s in job.status_history].count(JobStatus.CLAIMED) == 1
            claims[job.claimed_by] += 1
        for agent_id in claims:
            assert agent_id is not None
            assert (await client.get_agent(agent_id)).agent_pools == [pool.id]
        assert len(claims) > 1, "one agent took every job: the pool did not share the work"
        print(f"\n{JOBS} jobs over {len(claims)} agents: {sorted(claims.values(), reverse=True)}")
