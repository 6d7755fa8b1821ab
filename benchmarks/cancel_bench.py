"""Cancel benchmark: from a user's cancel request to the job's tool process tree being gone.

Run: .venv/bin/python -m benchmarks.cancel_bench [--quick]

The registry, a mosquitto broker and one `istari-agent run` per configuration run as their own
processes over loopback (the rig of `benchmarks.push_bench`). Each sample submits one
`@test:sleep` job (`tests/tools/behave.py`: a tool with a child in its process group and one
in its own session), waits until the tool runs (`tool.pid` exists in its temp dir), then
sends `PUT /api/v2/jobs/{id}/status?status_name=Canceled` and polls psutil every ~1 ms until
the tool and both children are gone (a zombie counts as gone). One sample at a time; the next
job is submitted once the agent has logged the canceled job's `job.finished`. Configurations:
1. push: MQTT, the agent woken by the registry's job.status notice (default settings);
2. poll-only: no broker, the cancel watch reads the job every `cancel_check_interval` 1 s
   (set for this run; the default is 10 s), each cancel at a random point of its cycle;
3. push with a tool that ignores SIGTERM: the SIGKILL after `kill_grace` 0.5 s ends it.
Besides the total, the times until the PUT's answer, until the registry recorded Canceled,
until the agent logged `job.canceling`, and until the tool's supervisor was gone too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from agent.protocol.states import JobStatus
from agent.submit import Submission, submit
from benchmarks.push_bench import Rig, events, ready_agent, rig_running, wait_logged, when
from benchmarks.saved import footer, save
from tests.tools import module

TOOL_PIDS = ("tool.pid", "child-0.pid", "child-1.pid")
STAGES = ("answered", "recorded", "seen", "supervisor")


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    samples: int = 20
    poll_interval: float = 1.0  # cancel_check_interval of the poll-only agent
    kill_grace: float = 0.5  # of the agent whose tool ignores SIGTERM


QUICK = Plan(5)


def configurations(rig: Rig, plan: Plan) -> dict[str, tuple[dict[str, Any], bool]]:
    """name -> (the agent's settings, whether the tool ignores SIGTERM)."""
    return {
        "push": (rig.mqtt(), False),
        "poll": ({"cancel_check_interval": plan.poll_interval}, False),
        "push_ignore_term": (rig.mqtt(kill_grace=plan.kill_grace), True),
    }


def gone(proc: psutil.Process) -> bool:
    """The process no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def running(work: Path) -> dict[str, psutil.Process]:
    """Wait until the tool runs; the processes of its tree (tool, children, supervisor)."""
    files = [work / "tmp" / name for name in TOOL_PIDS] + [work / "supervisor" / "pid"]
    async with asyncio.timeout(60):
        while True:
            # tool.pid is written last; a file still being written reads empty.
            if files[0].exists() and all(f.read_text().strip() for f in files):
                return {f.parent.name if f.name == "pid" else f.stem:
                        psutil.Process(int(f.read_text())) for f in files}  # fmt: skip
            await asyncio.sleep(0.005)


async def gone_after(procs: dict[str, psutil.Process], t0: float) -> dict[str, float]:
    """Poll every ~1 ms until every process is gone; seconds from `t0` until each was."""
    left, out = dict(procs), dict[str, float]()
    async with asyncio.timeout(120):
        while left:
            for name, proc in list(left.items()):
                if gone(proc):
                    out[name] = time.perf_counter() - t0
                    del left[name]
            await asyncio.sleep(0.001)
    return out


async def one_cancel(rig: Rig, home: Path, log: Path, stubborn: bool, gap: float) -> Any:
    """One job: submitted, running, canceled `gap` s later; its times (s)."""
    params = {"seconds": 600, "ignore_term": stubborn}
    sub = Submission(rig.root / "part.txt", module.fn("sleep"), params)
    job_id = (await submit(rig.client, sub)).id
    procs = await running(home / "work" / job_id)
    await asyncio.sleep(gap)

    async def cancel() -> float:
        await rig.client.update_job_status(job_id, JobStatus.CANCELED, None)
        return time.perf_counter() - t0

    wall, t0 = time.time(), time.perf_counter()
    asked = asyncio.create_task(cancel())
    gone_at = await gone_after(procs, t0)
    answered = await asked
    # Where the time went: the registry's record and the agent's log (same machine's clock).
    await wait_logged([log], "job.finished", 1, job_id=job_id)
    job = await rig.client.get_job(job_id)
    assert job.status is JobStatus.CANCELED, job.status_history
    canceling = next(
        e for e in events(log) if e.get("event") == "job.canceling" and e.get("job_id") == job_id
    )
    seen = datetime.fromisoformat(canceling["timestamp"]).timestamp()
    return {"total": max(gone_at[name.removesuffix(".pid")] for name in TOOL_PIDS),
            "answered": answered, "recorded": when(job, JobStatus.CANCELED) - wall,
            "seen": seen - wall, "supervisor": gone_at["supervisor"]}  # fmt: skip


async def cancels(rig: Rig, name: str, plan: Plan, settings: dict[str, Any], stubborn: bool) -> Any:
    """`plan.samples` cancels, one at a time, of jobs run by one `istari-agent run`.

    Without push, each cancel waits a random part of the check interval after the tool
    started, so that it lands at a random point of the watch's cycle (which starts with the
    job, not with the tool).
    """
    home = rig.root / name
    module.install(home / "modules")
    async with ready_agent(rig, home, **settings) as log:
        every = 0.0 if "mqtt_url" in settings else plan.poll_interval
        gaps = (random.uniform(0, every) for _ in range(plan.samples))
        return [await one_cancel(rig, home, log, stubborn, gap) for gap in gaps]


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    """p50 and max of the total, p50 of each stage, in ms; and every sample's total."""
    total = [1000 * s["total"] for s in samples]
    stages = {f"{k}_p50_ms": 1000 * statistics.median(s[k] for s in samples) for k in STAGES}
    return {"samples": len(samples), "p50_ms": statistics.median(total), "max_ms": max(total),
            **stages, "total_ms": [round(t, 2) for t in total]}  # fmt: skip


async def measure(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="istari-cancel-bench-") as tmp:
        async with rig_running(Path(tmp)) as rig:
            await rig.client.publish_module(module.manifest())
            out: dict[str, Any] = {}
            for name, (settings, stubborn) in configurations(rig, plan).items():
                samples = await cancels(rig, name, plan, settings, stubborn)
                shown = {k: v for k, v in settings.items() if not k.startswith("mqtt_")}
                out[name] = summary(samples) | {
                    "push": "mqtt_url" in settings, "tool_ignores_sigterm": stubborn,
                    "settings": shown,
                }  # fmt: skip
            return out


def rows(r: dict[str, Any], plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("push (MQTT), default settings", r["push"]),
        (f"poll-only, cancel_check_interval {plan.poll_interval:g} s", r["poll"]),
        (f"push, tool ignores SIGTERM, kill_grace {plan.kill_grace:g} s", r["push_ignore_term"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 cancels per configuration")
    plan = QUICK if parser.parse_args().quick else Plan()
    started = time.time()
    results = asyncio.run(measure(plan))
    out = save("cancel", asdict(plan), results, started)
    table = rows(results, plan)
    width = max(len(name) for name, _ in table)
    for name, s in table:
        print(f"{name:<{width}}  p50 {s['p50_ms']:7.1f} ms  max {s['max_ms']:7.1f} ms  (p50: "
              f"answered {s['answered_p50_ms']:.1f}, recorded {s['recorded_p50_ms']:.1f}, "
              f"agent acting {s['seen_p50_ms']:.1f}, supervisor gone "
              f"{s['supervisor_p50_ms']:.1f} ms; n={s['samples']})")  # fmt: skip
    footer(results, out)


if __name__ == "__main__":
    main()
