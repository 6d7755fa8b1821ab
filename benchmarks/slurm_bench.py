"""Slurm benchmark: what the agent's Slurm path adds to a job, against `sbatch --wait`.

Run: .venv/bin/python -m benchmarks.slurm_bench [--quick]

One run starts its own single-node Slurm (`tests/support/slurm.py`: munged, slurmctld and
slurmd in a temporary directory), an in-process registry and an agent serving in this process
(`tests/support/agent_harness.py`, `executor="slurm"`, registry poll every 0.05 s; no MQTT).
The tool is `@test:echo` (`tests/tools/behave.py`: a Python script that copies its model and
writes two outputs). N jobs (10; --quick 3), one at a time; for each:
1. agent: submit -> Completed (wall clock here; the submit uploads the model first), and the
   Running phase by the registry's clock: its Running entry (reported before sbatch) to its
   Uploading entry (after squeue, polled with a backoff from 0.2 s, saw the job leave the
   queue and `scontrol show job` said COMPLETED);
2. `sbatch --wait`: the `batch.sh` the agent wrote, copied to a scratch directory and
   submitted with the agent's own sbatch options (`sbatch_argv`) plus `--wait`, its output
   going to the scratch directory: the same tool command line in the same (finished) job
   directory, once the agent's job has completed.
Each side is split by slurmctld's log (ms timestamps, nothing polled): until Slurm recorded
the submit, the job in Slurm (submit to `_job_complete ... done`: waiting for a scheduling
pass, then running), and the lag from there until the end was noticed. A random 0-3 s pause
before each submission spreads them over slurmctld's scheduling cycle (passes ~3 s apart
here). The overhead is the agent's Running phase minus `sbatch --wait`, job by job.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent import logs
from agent.execution.base import LaunchSpec
from agent.execution.local import tool_environment
from agent.execution.slurm import POLL_FIRST, POLL_MAX, sbatch_argv
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from benchmarks.push_bench import when
from benchmarks.saved import save
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.slurm import Slurm

SPREAD = 3.0  # seconds: the random pause before each submission
CTLD = re.compile(r"^\[([^]]+)\] (?:_slurm_rpc_submit_batch_job: JobId=(\d+) |"
                  r"_job_complete: JobId=(\d+) done)")  # fmt: skip
SIDES = {"agent": "agent: Running phase", "wait": "sbatch --wait, same batch.sh"}


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    jobs: int = 10
    poll_interval: float = 0.05  # the agent's registry poll (there is no push here)


QUICK = Plan(3)


def resubmission(harness: AgentHarness, job: Job, scratch: Path) -> list[str]:
    """The agent's sbatch command line, plus --wait, for a copy of its batch.sh in `scratch`."""
    work = harness.workdir(job)
    scratch.mkdir(parents=True)
    shutil.copy(work / "supervisor" / "batch.sh", scratch / "batch.sh")
    s = harness.settings()
    spec = LaunchSpec([], work / "tmp", {}, scratch / "slurm.log", s.process_timeout,
                      s.kill_grace, scratch)  # fmt: skip
    argv = sbatch_argv(spec, s.slurm_options, f"bench-{scratch.name}")
    return [argv[0], "--wait", *argv[1:]]


async def sbatch_wait(argv: list[str], env: Mapping[str, str]) -> tuple[str, float, float]:
    """Run `sbatch --wait` to its end; (Slurm job id, start, end: epoch seconds)."""
    start = time.time()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().strip().split(";")[0], start, time.time()


async def one(harness: AgentHarness, cluster: Slurm, scratch: Path) -> dict[str, Any]:
    """One job through the agent, then its batch.sh through sbatch --wait; raw times."""
    await asyncio.sleep(random.uniform(0, SPREAD))
    t0 = time.perf_counter()
    job = await harness.submit("echo", {"label": "slurm bench"})
    await wait_for_status(harness, job.id, JobStatus.COMPLETED, deadline=120)
    e2e = time.perf_counter() - t0
    done = await harness.job(job.id)
    name = f"istari-{job.id}"  # the agent's job name in Slurm
    listed = await asyncio.to_thread(cluster.command, "squeue", "-h", "-t", "all", "-n", name,
                                     "-o", "%i")  # fmt: skip
    await asyncio.sleep(random.uniform(0, SPREAD))
    wait_id, wait_start, wait_end = await sbatch_wait(
        resubmission(harness, job, scratch), tool_environment(os.environ)
    )
    return {"e2e": e2e, "agent": (listed.stdout.strip(), when(done, JobStatus.RUNNING),
            when(done, JobStatus.UPLOADING)), "wait": (wait_id, wait_start, wait_end)}  # fmt: skip


def ctld_times(cluster: Slurm) -> dict[str, tuple[float, float]]:
    """Slurm job id -> (submit, done) as slurmctld logged them (epoch seconds, ms resolution)."""
    submitted: dict[str, float] = {}
    done: dict[str, float] = {}
    for line in (cluster.dir / "log" / "slurmctld.log").read_text().splitlines():
        if m := CTLD.match(line):
            at = datetime.fromisoformat(m[1]).timestamp()  # local time, as this process's
            (submitted if m[2] else done)[m[2] or m[3]] = at
    return {k: (submitted[k], done[k]) for k in done}


def stats(values: list[float]) -> dict[str, Any]:
    ms = [1000 * v for v in values]
    return {"p50_ms": statistics.median(ms), "max_ms": max(ms), "ms": [round(v) for v in ms]}


def summary(raw: list[dict[str, Any]], ctld: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """p50 and max (ms) of each measure and of its parts."""
    out: dict[str, Any] = {"e2e": stats([r["e2e"] for r in raw])}
    for side in SIDES:
        parts: dict[str, list[float]] = {"total": [], "submit": [], "in_slurm": [], "lag": []}
        for r in raw:
            slurm_id, start, end = r[side]
            submitted, done = ctld[slurm_id]
            for key, v in zip(parts, (end - start, submitted - start, done - submitted,
                                      end - done), strict=True):  # fmt: skip
                parts[key].append(v)
        out[side] = {key: stats(values) for key, values in parts.items()}
    totals = zip(out["agent"]["total"]["ms"], out["wait"]["total"]["ms"], strict=True)
    out["overhead"] = stats([(a - w) / 1000 for a, w in totals])
    t, delay, looks = POLL_FIRST, POLL_FIRST, []
    while t < 12:  # when the agent's squeue calls come after sbatch (their own time aside)
        looks.append(round(t, 2))
        delay = min(delay * 1.5, POLL_MAX)
        t += delay
    return out | {"agent_squeue_at_s": looks}


async def measure(plan: Plan, root: Path) -> dict[str, Any]:
    cluster = Slurm(root / "slurm")
    await cluster.start()
    try:
        os.environ.update(cluster.env)  # the agent and its sbatch find the cluster here
        settings = RegistrySettings(data_dir=root / "registry")
        async with running(settings) as reg, RegistryClient(reg.url, reg.token) as client:
            overrides = {"executor": "slurm", "slurm_partition": cluster.partition,
                         "poll_interval": plan.poll_interval}  # fmt: skip
            harness = AgentHarness(reg, client, root / "agent", overrides=overrides)
            async with serving(harness):
                raw = [await one(harness, cluster, root / f"scratch-{i}") for i in range(plan.jobs)]
        version = cluster.command("sbatch", "--version").stdout.strip()
        return summary(raw, ctld_times(cluster)) | {"slurm": version}
    finally:
        await cluster.stop()


def line(label: str, s: dict[str, Any]) -> str:
    return f"{label:<31}  p50 {s['p50_ms']:6.0f} ms  max {s['max_ms']:6.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 jobs instead of 10")
    plan = QUICK if parser.parse_args().quick else Plan()
    logs.configure("warning", json=False)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="istari-slurm-bench-") as tmp:
        r = asyncio.run(measure(plan, Path(tmp)))
    out = save("slurm", asdict(plan), r, started)
    print(line("agent: submit -> Completed", r["e2e"]))
    for side, label in SIDES.items():
        p = {k: v["p50_ms"] for k, v in r[side].items()}
        print(line(label, r[side]["total"]) + f"  (p50: to Slurm {p['submit']:.0f}, in Slurm "
              f"{p['in_slurm']:.0f}, end noticed after {p['lag']:.0f} ms)")  # fmt: skip
    print(line("overhead: agent - sbatch --wait", r["overhead"]) + "  (job by job)")
    print(f"({plan.jobs} jobs, {r['slurm']}; {r['duration_s']:.0f} s; {out})")


if __name__ == "__main__":
    main()
