"""Agent benchmark: what the agent adds to each job, against running the tool directly.

Run: .venv/bin/python -m benchmarks.agent_bench [--jobs 40]

Measured in one run on this machine, the registry in its own process:
- floor: the same tool (`@test:echo`, a Python script that copies its model) spawned directly
  with a prepared input file, sequentially: the least any agent could take per job;
- the agent (`run --until-idle` in this process) over N pre-submitted jobs at concurrency 1:
  jobs/s, wall time per job (claim to terminal report) and the agent's own CPU time per job
  (this process only: the tool and the registry are other processes);
- end-to-end latency, submit to Completed, one job at a time with the agent serving
  (poll interval 0.05 s; push wake-ups come with MQTT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import logs
from agent.config import KeepWorkDirs, Settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.jobs.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.service import serve
from agent.stopping import Stop
from agent.submit import Submission, follow, submit
from benchmarks.registry_bench import start_registry
from tests.tools import module

RESULTS = Path(__file__).parent / "results"


def floor(root: Path, runs: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of spawning the tool directly, as the agent would."""
    temp = root / "floor"
    temp.mkdir()
    model = temp / "part.txt"
    model.write_text("model")
    inputs = temp / "input.json"
    inputs.write_text(json.dumps({"part": {"type": "user_model", "value": str(model)},
                                  "label": {"type": "parameter", "value": "x"}}))  # fmt: skip
    argv = ["python3", str(module.TOOL), "@test:echo", str(inputs), str(temp / "out.json")]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*argv, str(temp)], check=True, capture_output=True, cwd=temp, env=env)
        times.append(time.perf_counter() - start)
    return times


def settings(url: str, token: str, root: Path, **kw: Any) -> Settings:
    return Settings(
        registry_api_url=url, registry_api_token=token, modules_path=root / "modules",
        output_path=root / "work", state_path=root / "state", host_os=module.HOST_OS,
        keep_work_dirs=KeepWorkDirs.NEVER, **kw,
    )  # fmt: skip


async def submit_all(client: RegistryClient, root: Path, n: int) -> list[str]:
    await client.publish_module(module.manifest())
    model = root / "part.txt"
    model.write_text("model")
    sub = Submission(model, module.fn("echo"), {"label": "bench"})
    return [(await submit(client, sub)).id for _ in range(n)]


async def throughput(url: str, token: str, root: Path, n: int) -> dict[str, Any]:
    async with RegistryClient(url, token) as client:
        ids = await submit_all(client, root, n)
        env = tool_environment(os.environ)  # PATH set by `main`
        cpu0, wall0 = time.process_time(), time.perf_counter()
        agent = settings(url, token, root, poll_interval=1)
        outcomes = await serve(agent, env, Mode.UNTIL_IDLE)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert len(outcomes) == n and all(o.ok for o in outcomes), outcomes[:3]
        per_job = [claimed_to_end(await client.get_job(i)) for i in ids]
    return {"jobs": n, "wall_s": wall, "jobs_per_s": n / wall, "agent_cpu_ms_per_job":
            1000 * cpu / n, "job_wall_s": per_job}  # fmt: skip


async def latency(url: str, token: str, root: Path, n: int) -> list[float]:
    stop = Stop()
    env = tool_environment(os.environ)
    agent_settings = settings(url, token, root / "latency", poll_interval=0.05)
    async with RegistryClient(url, token) as client, asyncio.TaskGroup() as tg:
        tg.create_task(serve(agent_settings, env, Mode.SERVE, stop=stop))
        model = root / "part.txt"
        sub = Submission(model, module.fn("echo"), {"label": "bench"})
        times = []
        for _ in range(n):
            start = time.perf_counter()
            job = await submit(client, sub)
            done = await follow(client, job.id, lambda s, m: None, interval=0.005)
            times.append(time.perf_counter() - start)
            assert done.status is JobStatus.COMPLETED
        stop.request("benchmark done")
    return times


def claimed_to_end(job: Job) -> float:
    """Seconds from the Claimed entry to the terminal one, by the registry's clock."""
    stamps = {e.name: datetime.fromisoformat(e.created or "") for e in job.status_history}
    return (stamps[JobStatus.COMPLETED] - stamps[JobStatus.CLAIMED]).total_seconds()


def ms(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20)
    return f"median {1000 * statistics.median(values):.1f} ms, p95 {1000 * q[18]:.1f} ms"


async def main(n: int) -> None:
    logs.configure("warning", json=False)
    with tempfile.TemporaryDirectory(prefix="istari-agent-bench-") as tmp:
        root = Path(tmp)
        module.install(root / "modules")
        (root / "latency").mkdir()
        module.install(root / "latency" / "modules")
        # `python3` is this interpreter for the floor and the agent alike (a pyenv shim
        # would add a shell script's start-up to both and hide the agent's share).
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(sys.executable)
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        token = secrets.token_urlsafe(24)
        proc, url = start_registry(root / "registry", token)
        try:
            base = floor(root, n, dict(os.environ))
            tp = await throughput(url, token, root, n)
            lat = await latency(url, token, root, max(10, n // 2))
        finally:
            proc.terminate()
            proc.wait()
    overhead = statistics.median(tp["job_wall_s"]) - statistics.median(base)
    report = {
        "floor_tool_s": base, "agent": tp, "e2e_latency_s": lat,
        "overhead_wall_ms_per_job": 1000 * overhead,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agent_bench.json").write_text(json.dumps(report, indent=2))
    print(f"floor (tool spawned directly):   {ms(base)}")
    print(f"agent, per job (claim→reported): {ms(tp['job_wall_s'])}")
    print(f"agent overhead per job (wall):   {1000 * overhead:.1f} ms over the floor median")
    print(f"agent CPU time per job:          {tp['agent_cpu_ms_per_job']:.1f} ms (this process)")
    print(f"throughput at concurrency 1:     {tp['jobs_per_s']:.2f} jobs/s "
          f"(floor: {1 / statistics.median(base):.2f} tool runs/s)")  # fmt: skip
    print(f"e2e submit→Completed (poll 0.05 s): {ms(lat)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    asyncio.run(main(parser.parse_args().jobs))
