"""Scaling benchmark: jobs/s and pickup against the number of agents and the queue depth.

Run: .venv/bin/python -m benchmarks.scale_bench [--quick]

push_bench's rig: mosquitto, the registry (its own process, debug access log) and the agents
as their own processes over loopback, push on.
1. agents: 1, 10, 30, 100 agents in one pool (`benchmarks/pool_worker.py` processes of at
   most 25 agents each, so 1 to 4 of them), the same number of `@test:ledger` jobs at each
   point, submitted back to back as push_bench's pool does: jobs/s (first submit -> last
   Completed, by the registry's clock), registry requests and lost claims (409 answers to a
   status `PUT`) per job, CPU per job, and submit -> Claimed in that burst (mostly queueing
   where the agents are fewer than the submits). Then the pickup proper: jobs one at a time
   to the idle pool, submit -> Claimed (the registry's timestamp against our clock just
   before the submit), each 0.2 s after the last one completed;
2. depth: 10 to 10,000 Pending filler jobs on one shared model, assigned to a pool no agent
   is in, so they stay Pending; one `istari-agent run` with push then picks up fresh jobs
   one at a time (push_bench's `one_pickup`). Per depth: pickup p50/p99, `available_jobs`
   timed from a client (and by the registry's access log, which has each request's ms),
   the registry's CPU per listing, and the listing's own SQL timed on the registry's
   database (read-only, this process). The query plan is taken at the deepest point.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from agent import identity
from agent.jobs.dispatch import PAGE_SIZE
from agent.localregistry.store.jobs import available_clause
from agent.protocol.states import JobStatus
from benchmarks import push_bench as pb
from benchmarks.push_bench import Rig
from benchmarks.resources_bench import workspace
from benchmarks.saved import footer, print_rows, save
from tests.tools import ledger, stamp
from tests.tools.module import HOST_OS

PER_WORKER = 25  # agents per pool_worker process
FILLERS_AT_ONCE = 8  # concurrent submits while filling the queue


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    agents: tuple[int, ...] = (1, 10, 30, 100)
    jobs: int = 300  # per point, submitted back to back
    pickups: int = 20  # per point, one at a time to the idle pool
    depths: tuple[int, ...] = (10, 100, 1000, 10000)
    depth_samples: int = 20
    listings: int = 50


QUICK = Plan((1, 10, 100), 60, 5, (10, 100, 1000), 5, 20)


def q(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# -- 1. against the number of agents --------------------------------------------------------


async def agents_point(rig: Rig, agents: int, n: int, pickups: int) -> dict[str, Any]:
    """`agents` in one pool, push on: `n` jobs submitted back to back, then `pickups` jobs one
    at a time, each once the last is done and the pool idle again."""
    home = rig.root / f"agents-{agents}"
    module_dir = ledger.install(home / "modules")
    pool_id = (await rig.client.create_pool(f"scale-{agents}", "scale benchmark")).id
    count = -(-agents // PER_WORKER)
    assert agents % count == 0, agents
    models = [await rig.model() for _ in range(n)]
    settings = rig.mqtt(agent_pools=pool_id)
    procs, logs = await pb.workers(rig, home, count, agents // count, **settings)
    try:
        started = time.time()
        await pb.wait_logged(logs, "push.registry_presence", agents, state="online")
        ready_s = time.time() - started
        cpu0 = pb.cpu_seconds(rig, procs)
        sent: dict[str, float] = {}
        t0 = time.time()
        for model in models:
            at = time.time()
            sent[await rig.submit(ledger.FUNCTION, model, assigned_agent_pool_id=pool_id)] = at
        submit_s = time.time() - t0
        await pb.all_completed(rig.client, pool_id, n)
        await asyncio.sleep(1.0)  # the last agents report Idle and look once more
        end = time.time()
        cpu = {k: v - cpu0[k] for k, v in pb.cpu_seconds(rig, procs).items()}
        alone = [await one_at_a_time(rig, pool_id) for _ in range(pickups)]
    finally:
        await pb.stop(procs)
    jobs = [j for j in await pb.pool_jobs(rig.client, pool_id) if j.id in sent]
    burst = [1000 * (pb.when(j, JobStatus.CLAIMED) - sent[j.id]) for j in jobs]
    runs = pb.pool_runs(jobs, ledger.runs(module_dir), t0)
    return {
        "agents": agents, "workers": count, "jobs": n, "ready_s": ready_s,
        "submit_s": submit_s, "submits_per_s": n / submit_s,
        "pickup_p50_ms": q(alone, 50), "pickup_p99_ms": q(alone, 99),
        "burst_pickup_p50_ms": q(burst, 50), "burst_pickup_p99_ms": q(burst, 99),
        "lost_claims_per_job": lost_claims(rig, t0, end) / n,
        "cpu_ms_per_job": {k: 1000 * v / n for k, v in cpu.items()},
        **runs, **pb.per_agent(jobs, pb.agent_ids(rig, home)),
        **pb.load(pb.requests(rig, t0, end), n),
    }  # fmt: skip


async def one_at_a_time(rig: Rig, pool_id: str) -> float:
    """One `@test:ledger` job to the idle pool: ms from submit to Claimed."""
    model_id = await rig.model()
    await asyncio.sleep(pb.IDLE_GAP)
    t0 = time.time()
    job_id = await rig.submit(ledger.FUNCTION, model_id, assigned_agent_pool_id=pool_id)
    return 1000 * (pb.when(await pb.completed(rig.client, job_id), JobStatus.CLAIMED) - t0)


def registry_log(rig: Rig, start: float, end: float) -> list[dict[str, Any]]:
    """The registry's access log lines between `start` and `end`."""
    return [
        e
        for e in pb.events(rig.log_path)
        if e.get("event") == "registry.request"
        and start <= datetime.fromisoformat(e["timestamp"]).timestamp() <= end
    ]


def lost_claims(rig: Rig, start: float, end: float) -> int:
    """Status moves the registry refused (409): claims that lost a race, in a pool run."""
    return sum(
        e["method"] == "PUT" and e["path"].endswith("/status") and e["status"] == 409
        for e in registry_log(rig, start, end)
    )


# -- 2. against the queue depth -------------------------------------------------------------


async def fill(rig: Rig, model_id: str, pool_id: str, n: int) -> None:
    """Submit `n` jobs on `model_id` to `pool_id`, FILLERS_AT_ONCE at a time."""
    todo = iter(range(n))

    async def submitter() -> None:
        for _ in todo:
            await rig.submit(stamp.FUNCTION, model_id, assigned_agent_pool_id=pool_id)

    await asyncio.gather(*(submitter() for _ in range(FILLERS_AT_ONCE)))


async def settled(proc: psutil.Process) -> None:
    """Wait (15 s at most) until `proc` is quiet: one 10 ms clock tick of CPU at most in 0.2 s.
    After a fill, the registry still publishes its notices to the broker for a while."""
    async with asyncio.timeout(15):
        while True:
            before = sum(proc.cpu_times()[:2])
            await asyncio.sleep(0.2)
            if sum(proc.cpu_times()[:2]) - before < 0.015:
                return


async def listings(rig: Rig, agent_id: str, n: int) -> dict[str, float]:
    """`available_jobs` for our agent, `n` times in a row: client and registry figures."""
    registry = psutil.Process(rig.registry.pid)
    times = []
    cpu0, start = sum(registry.cpu_times()[:2]), time.time()
    for _ in range(n):
        t = time.perf_counter()
        await rig.client.available_jobs(agent_id, size=PAGE_SIZE)
        times.append(1000 * (time.perf_counter() - t))
    cpu, end = sum(registry.cpu_times()[:2]) - cpu0, time.time()
    path = f"/api/v2/agents/{agent_id}/available_jobs"
    served = [e["ms"] for e in registry_log(rig, start, end + 0.5) if e["path"] == path]
    return {"available_jobs_p50_ms": q(times, 50), "available_jobs_p99_ms": q(times, 99),
            "available_jobs_server_p50_ms": q(served, 50),
            "registry_cpu_ms_per_listing": 1000 * cpu / n}  # fmt: skip


def listing_sql(db: Path, agent_id: str, n: int = 10) -> tuple[dict[str, float], Any]:
    """The listing's two queries (count, page) on the registry's database: each one's ms and
    query plan."""
    where, args = available_clause(agent_id, HOST_OS)
    queries = {
        "count": (f"SELECT COUNT(*) FROM jobs WHERE {where}", args),
        "page": (f"SELECT * FROM jobs WHERE {where} ORDER BY created, id "
                 "LIMIT :limit OFFSET 0", {**args, "limit": PAGE_SIZE}),
    }  # fmt: skip
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        took = {}
        for name, (sql, params) in queries.items():
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(sql, params).fetchall()
            took[f"listing_sql_{name}_ms"] = 1000 * (time.perf_counter() - start) / n
        plans = {
            name: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for name, (sql, params) in queries.items()
        }
    finally:
        conn.close()
    return took, plans


async def depth_curve(rig: Rig, plan: Plan) -> dict[str, Any]:
    """Fill the queue step by step; at each depth, fresh pickups and listings for one agent."""
    nobody = (await rig.client.create_pool("nobody", "filler jobs: no agent is a member")).id
    filler_model, filled, fill_s = await rig.model(), 0, 0.0
    home = rig.root / "depth"
    module_dir = stamp.install(home / "modules")
    points, plans = [], dict[str, list[str]]()
    async with pb.ready_agent(rig, home, **rig.mqtt()):
        ident = identity.load(home / "state", rig.url)
        assert ident is not None
        for depth in plan.depths:
            t = time.perf_counter()
            await fill(rig, filler_model, nobody, depth - filled)
            took, filled = time.perf_counter() - t, depth
            fill_s += took
            await settled(psutil.Process(rig.registry.pid))
            samples = [
                await pb.one_pickup(rig, module_dir, pb.IDLE_GAP) for _ in range(plan.depth_samples)
            ]
            sql_ms, plans = listing_sql(rig.root / "registry" / "registry.sqlite3", ident.agent_id)
            p = pb.percentiles(samples)
            points.append({
                "depth": depth, "fill_s": took, "pickup_p50_ms": p["p50_ms"],
                "pickup_p99_ms": p["p99_ms"], "claimed_p50_ms": p["claimed_p50_ms"],
                "claimed_p99_ms": p["claimed_p99_ms"], "claim_p50_ms": p["claim_p50_ms"],
                **await listings(rig, ident.agent_id, plan.listings), **sql_ms,
                "listing_sql_ms": sum(sql_ms.values()),
            })  # fmt: skip
    return {"points": points, "fill": {"jobs": filled, "seconds": fill_s,
            "per_s": filled / fill_s}, "query_plan": plans}  # fmt: skip


# -- the run --------------------------------------------------------------------------------


async def measure(plan: Plan, root: Path | None = None) -> dict[str, Any]:
    with workspace(root, "istari-scale-bench-") as tmp:
        async with pb.rig_running(tmp) as rig:
            agents = [await agents_point(rig, a, plan.jobs, plan.pickups) for a in plan.agents]
            depth = await depth_curve(rig, plan)
    return {"agents": agents, "depth": depth["points"], "fill": depth["fill"],
            "query_plan": depth["query_plan"]}  # fmt: skip


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, aim) lines of the table."""
    out = [
        (f"{a['agents']} agents ({a['workers']} processes), {a['jobs']} jobs",
         f"{a['jobs_per_s']:.1f} jobs/s, pickup p50 {a['pickup_p50_ms']:.1f} / p99 "
         f"{a['pickup_p99_ms']:.1f} ms (in the burst {a['burst_pickup_p50_ms']:.0f} / "
         f"{a['burst_pickup_p99_ms']:.0f} ms), {a['requests_per_job']:.1f} requests and "
         f"{a['lost_claims_per_job']:.1f} lost claims per job (submits {a['submits_per_s']:.0f}/s)",
         f"double runs {a['double_runs']}")
        for a in r["agents"]
    ]  # fmt: skip
    out += [
        (f"{d['depth']:,} pending", f"pickup p50 {d['pickup_p50_ms']:.1f} / p99 "
         f"{d['pickup_p99_ms']:.1f} ms; available_jobs p50 {d['available_jobs_p50_ms']:.1f} ms "
         f"(server {d['available_jobs_server_p50_ms']:.1f}, SQL {d['listing_sql_ms']:.1f}, "
         f"registry CPU {d['registry_cpu_ms_per_listing']:.1f} ms)", "")
        for d in r["depth"]
    ]  # fmt: skip
    f = r["fill"]
    out.append(("filling the queue", f"{f['jobs']:,} jobs in {f['seconds']:.1f} s "
                f"({f['per_s']:.0f}/s, {FILLERS_AT_ONCE} at once)", ""))  # fmt: skip
    out += [(f"query plan: {k}", "; ".join(v), "") for k, v in r["query_plan"].items()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    plan = QUICK if parser.parse_args().quick else Plan()
    started = time.time()
    results = asyncio.run(measure(plan))
    out = save("scale", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
