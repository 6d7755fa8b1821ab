"""Agent benchmark: what the agent adds to each job, against running the tool directly.

Run: .venv/bin/python -m benchmarks.agent_bench [--quick] [--jobs 40]

Measured in one run on this machine, the registry in its own process:
- floor: the same tool (`@test:echo`, a Python script that copies its model) spawned directly
  with a prepared input file, sequentially: the least any agent could take per job;
- the agent (`run --until-idle` in this process) over N pre-submitted jobs at concurrency 1:
  jobs/s, wall time per job (claim to terminal report) and the agent's own CPU time per job
  (this process only: the tool and the registry are other processes);
- end-to-end latency, submit to Completed, one job at a time with the agent serving
  (poll interval 0.05 s; push wake-ups come with MQTT);
- then resources_bench, its `istari-agent run` processes on push_bench's rig: the idle
  footprint, a 1 GiB output upload against a plain copy, and what the RSS is made of.
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import logs
from agent.config import KeepWorkDirs, Settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.service import serve
from agent.stopping import Stop
from agent.submit import Submission, follow, submit
from benchmarks import resources_bench
from benchmarks.registry_bench import start_registry
from benchmarks.saved import footer, print_rows, save
from tests.tools import module


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    jobs: int = 40
    idle_window: float = 30.0
    upload_mib: int = 1024


QUICK = Plan(10, 10.0, 128)


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


# -- the run --------------------------------------------------------------------------------


@contextmanager
def python3_first(root: Path) -> Iterator[None]:
    """`python3` on PATH is this interpreter, for the floor and the agent alike (a pyenv shim
    would add a shell script's start-up to both and hide the agent's share)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    saved = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{saved}"
    try:
        yield
    finally:
        os.environ["PATH"] = saved


async def per_job(plan: Plan, root: Path) -> dict[str, Any]:
    """The floor, the agent in this process over pre-submitted jobs, and end to end."""
    module.install(root / "modules")
    (root / "latency").mkdir()
    module.install(root / "latency" / "modules")
    token = secrets.token_urlsafe(24)
    with python3_first(root):
        proc, url = start_registry(root / "registry", token)
        try:
            base = floor(root, plan.jobs, dict(os.environ))
            tp = await throughput(url, token, root, plan.jobs)
            lat = await latency(url, token, root, max(10, plan.jobs // 2))
        finally:
            proc.terminate()
            proc.wait()
    overhead = statistics.median(tp["job_wall_s"]) - statistics.median(base)
    return {"floor_tool_s": base, "agent": tp, "e2e_latency_s": lat,
            "overhead_wall_ms_per_job": 1000 * overhead}  # fmt: skip


async def measure(plan: Plan, root: Path | None = None) -> dict[str, Any]:
    with resources_bench.workspace(root, "istari-agent-bench-") as tmp:
        (tmp / "jobs").mkdir()
        (tmp / "resources").mkdir()
        jobs = await per_job(plan, tmp / "jobs")
        more = resources_bench.Plan(plan.idle_window, plan.upload_mib)
        return jobs | await resources_bench.measure(more, tmp / "resources")


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, aim) lines of the table."""
    base, tp, lat = r["floor_tool_s"], r["agent"], r["e2e_latency_s"]
    overhead = r["overhead_wall_ms_per_job"]
    return [
        ("floor (tool spawned directly)", ms(base), ""),
        ("agent, per job (claim -> reported)", ms(tp["job_wall_s"]), ""),
        ("agent overhead per job (wall)", f"{overhead:.1f} ms over the floor median",
         f"< 10 ms: {'met' if overhead < 10 else 'NOT met'}"),
        ("agent CPU time per job", f"{tp['agent_cpu_ms_per_job']:.1f} ms (this process)", ""),
        ("throughput at concurrency 1", f"{tp['jobs_per_s']:.2f} jobs/s (floor: "
         f"{1 / statistics.median(base):.2f} tool runs/s)", ""),
        ("e2e submit -> Completed (poll 0.05 s)", ms(lat), ""),
        *resources_bench.rows(r),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs for the per-job figures")
    parser.add_argument("--per-job-only", action="store_true",
                        help="only the per-job figures (floor, throughput, end to end): what to "
                        "profile with py-spy")  # fmt: skip
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.jobs is not None:
        plan = replace(plan, jobs=args.jobs)
    logs.configure("warning", json=False)
    started = time.time()
    if args.per_job_only:
        with resources_bench.workspace(None, "istari-agent-bench-") as tmp:
            jobs = asyncio.run(per_job(plan, tmp))
        print(json.dumps({k: v for k, v in jobs.items() if not isinstance(v, list | dict)}
                         | {"agent_cpu_ms_per_job": jobs["agent"]["agent_cpu_ms_per_job"],
                            "jobs_per_s": jobs["agent"]["jobs_per_s"]}))  # fmt: skip
        return
    results = asyncio.run(measure(plan))
    out = save("agent", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
