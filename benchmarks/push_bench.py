"""Push benchmark: job pickup latency, throughput, idle registry load and a 100-agent pool.

Run: .venv/bin/python -m benchmarks.push_bench [--quick]

The registry (`istari-agent --log-level debug registry serve --mqtt-url ...`), a mosquitto
broker and every agent run as their own processes over loopback. Registry load is counted
from the registry's access log (one `registry.request` line per request); the benchmark's own
requests (submits, job listings) are left out by path. Measured:
1. pickup latency, submit -> the tool's first line (`@test:stamp`), with push and poll-only;
2. jobs/s of `istari-agent run --until-idle` over pre-submitted jobs, concurrency 1 and 4;
3. idle registry requests per agent per hour: real time, a 100x-compressed hour, poll-only;
4. a pool of 100 agents (4 worker processes) running 2,000 `@test:ledger` jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from agent import identity
from agent.protocol.states import TERMINAL, JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job, NewRevision
from agent.registry.transfer import upload_revision
from benchmarks.saved import footer, print_rows, save
from tests.support.mosquitto import Mosquitto
from tests.tools import ledger, stamp
from tests.tools.module import HOST_OS

ROOT = Path(__file__).parents[1]
AGENT_ENV = "ISTARI_DIGITAL_AGENT_"
IDLE_GAP = 0.2  # seconds after a job completes: the agent reports Idle and looks once more
COMPRESSED = {"push_poll_interval": 0.3, "push_poll_max_interval": 6.0}  # 100x: 36 s = 1 h
COMPRESSED_WINDOW, COMPRESSED_SETTLE = 36.0, 12.0  # the backoff reaches 6 s after 9.3 s
REAL_SETTLE = 5.0
# The benchmark's own requests; agents never submit or list jobs.
OWN = re.compile(r"^(POST /api/v2/models/[^/]+/jobs|GET /api/v2/jobs)$")
PENDING, CLAIMED, RUNNING = JobStatus.PENDING, JobStatus.CLAIMED, JobStatus.RUNNING
ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{32,})$")


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    mqtt_samples: int = 50
    poll_samples: int = 20
    poll_interval: float = 1.0
    throughput_jobs: int = 200
    idle_agents: int = 10
    real_window: float = 60.0
    pool_workers: int = 4
    agents_per_worker: int = 25
    pool_jobs: int = 2000


QUICK = Plan(10, 5, 1.0, 40, 10, COMPRESSED_WINDOW, 2, 10, 200)


@dataclass
class Rig:
    """The parts every measurement uses: registry and broker, a client, one model to run on."""

    root: Path
    url: str
    token: str
    broker: Mosquitto
    registry: subprocess.Popen[str]
    log_path: Path  # the registry's stderr: JSON lines, one `registry.request` per request
    client: RegistryClient
    part: NewRevision | None = None  # the model file every job runs on
    params: NewRevision | None = None

    def mqtt(self, **more: Any) -> dict[str, Any]:
        """Agent settings for push wake-ups from this rig's broker."""
        b = self.broker
        return {"mqtt_url": b.url, "mqtt_username": b.username, "mqtt_password": b.password, **more}

    def env(self, home: Path, **settings: Any) -> dict[str, str]:
        """An agent process's environment: its settings as `ISTARI_DIGITAL_AGENT_*`."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(AGENT_ENV)}
        values = {
            "registry_api_url": self.url, "registry_api_token": self.token, "host_os": HOST_OS,
            "keep_work_dirs": "never", "modules_path": home / "modules",
            "output_path": home / "work", "state_path": home / "state", **settings,
        }  # fmt: skip
        return {**base, **{AGENT_ENV + k.upper(): str(v) for k, v in values.items()}}

    async def model(self) -> str:
        """A new model (one request: the file is uploaded once); its id.

        Each job gets its own model: a model's document lists all its artifacts, so one model
        shared by thousands of jobs makes the agents' `GET /models/{id}` slower as a run goes.
        """
        assert self.part is not None
        return (await self.client.create_model(self.part)).id

    async def submit(self, function: str, model_id: str, **query: str | None) -> str:
        """Submit one job on `model_id`; its id."""
        assert self.params is not None
        return (await self.client.submit_job(model_id, function, self.params, None, **query)).id


# -- processes and logs ---------------------------------------------------------------------


def start_registry(root: Path, token: str, broker: Mosquitto) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": token,
        "ISTARI_LOCAL_REGISTRY_MQTT_USERNAME": broker.username,
        "ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD": broker.password,
    }  # fmt: skip
    with (root / "registry.log").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--log-level", "debug", "registry", "serve",
             "--port", "0", "--data-dir", str(root / "registry"), "--mqtt-url", broker.url],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split("listening on ")[1].split()[0]


async def spawn(log: Path, args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m *args`, its stderr (the JSON log) to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


async def stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in procs:
        proc.terminate()
    async with asyncio.timeout(60):
        await asyncio.gather(*(p.wait() for p in procs))


def events(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log (a last line still being written is skipped)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


async def wait_logged(logs: list[Path], event: str, count: int, **fields: Any) -> None:
    """Wait (120 s at most) until `event` with `fields` is logged `count` times across `logs`."""

    def seen() -> int:
        return sum(
            e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            for log in logs
            for e in events(log)
        )

    async with asyncio.timeout(120):
        while True:
            if seen() >= count:
                return
            await asyncio.sleep(0.2)  # another process's log: polling is all there is


def requests(rig: Rig, start: float, end: float) -> list[str]:
    """`METHOD /path` of every agent request the registry logged between `start` and `end`."""
    out = []
    for e in events(rig.log_path):
        if e.get("event") != "registry.request":
            continue
        if start <= datetime.fromisoformat(e["timestamp"]).timestamp() <= end:
            line = f"{e['method']} {e['path']}"
            if not OWN.match(line):
                out.append(line)
    return out


def kind(request: str) -> str:
    """A request with its ids replaced: `PUT /api/v2/jobs/{id}/status`."""
    return "/".join("{id}" if ID.match(seg) else seg for seg in request.split("/"))


# -- the rig --------------------------------------------------------------------------------


def quiet(broker: Mosquitto) -> None:
    """Log only warnings: the test broker's `log_type all` writes a line per message sent."""
    text = broker.config_path.read_text().replace("log_type all", "log_type warning")
    broker.config_path.write_text(text)


@asynccontextmanager
async def rig_running(root: Path) -> AsyncIterator[Rig]:
    broker = Mosquitto(root / "mosquitto")
    quiet(broker)
    token = os.urandom(18).hex()
    async with broker:
        proc, url = start_registry(root, token, broker)
        try:
            async with RegistryClient(url, token) as client:
                rig = Rig(root, url, token, broker, proc, root / "registry.log", client)
                await prepare(rig)
                yield rig
        finally:
            proc.terminate()
            proc.wait()


async def prepare(rig: Rig) -> None:
    """Publish both tool modules; upload the model and parameters files every job uses."""
    for manifest in (stamp.manifest(), ledger.manifest()):
        await rig.client.publish_module(manifest)
    part, params = rig.root / "part.txt", rig.root / "parameters.json"
    part.write_text("one model for every job")
    params.write_text("{}")
    rig.part = await upload_revision(rig.client, part)
    rig.params = await upload_revision(rig.client, params)


# -- registry-recorded times ----------------------------------------------------------------


def when(job: Job, status: JobStatus) -> float:
    """When the registry recorded `status` for `job` (seconds since the epoch)."""
    entry = next(e for e in job.status_history if e.name is status)
    return datetime.fromisoformat(entry.created or "").timestamp()


async def completed(client: RegistryClient, job_id: str, interval: float = 0.02) -> Job:
    async with asyncio.timeout(60):
        while True:
            job = await client.get_job(job_id)
            if job.status in TERMINAL:
                assert job.status is JobStatus.COMPLETED, job.status_history
                return job
            await asyncio.sleep(interval)


# -- 1. pickup latency ----------------------------------------------------------------------


@asynccontextmanager
async def ready_agent(rig: Rig, home: Path, **settings: Any) -> AsyncIterator[Path]:
    """One `istari-agent run` in `home`, once it listens (push online, or polling); its log."""
    log = home / "agent.log"
    proc = await spawn(log, ["agent", "run"], rig.env(home, **settings))
    try:
        if "mqtt_url" in settings:
            await wait_logged([log], "push.registry_presence", 1, state="online")
        else:
            await wait_logged([log], "push.disabled", 1)
        yield log
    finally:
        await stop([proc])


async def pickup(rig: Rig, name: str, n: int, gap: Callable[[], float], **settings: Any) -> Any:
    """`n` jobs one at a time to one `istari-agent run`: submit -> tool started, -> Claimed."""
    home = rig.root / name
    module_dir = stamp.install(home / "modules")
    async with ready_agent(rig, home, **settings):
        return [await one_pickup(rig, module_dir, gap()) for _ in range(n)]


async def one_pickup(rig: Rig, module_dir: Path, gap: float) -> dict[str, float]:
    model_id = await rig.model()
    await asyncio.sleep(gap)
    t0 = time.time()
    job_id = await rig.submit(stamp.FUNCTION, model_id)
    # The file system, not the registry, so that waiting adds no load to what is measured.
    async with asyncio.timeout(60):
        while True:
            if (module_dir / f"{job_id}.start").exists():
                break
            await asyncio.sleep(0.005)
    job = await completed(rig.client, job_id)
    started = stamp.started(module_dir, job_id)
    assert started is not None
    # Where the time goes, by the registry's clock (the same machine's clock as ours).
    pending, claimed, running = (when(job, s) for s in (PENDING, CLAIMED, RUNNING))
    return {"pickup": started - t0, "claimed": claimed - t0, "submit": pending - t0,
            "claim": claimed - pending, "validate": running - claimed,
            "spawn": started - running}  # fmt: skip


def percentiles(samples: list[dict[str, float]]) -> dict[str, float]:
    """p50 and p99 of the pickup (to the tool's first line) and of submit -> Claimed, and p50
    of each stage, in ms."""

    def q(key: str, p: int) -> float:
        values = [1000 * s[key] for s in samples]
        return statistics.quantiles(values, n=100, method="inclusive")[p - 1]

    stages = {f"{k}_p50_ms": q(k, 50) for k in ("submit", "claim", "validate", "spawn")}
    return {"samples": len(samples), "p50_ms": q("pickup", 50), "p99_ms": q("pickup", 99),
            "claimed_p50_ms": q("claimed", 50), "claimed_p99_ms": q("claimed", 99),
            **stages}  # fmt: skip


# -- 2. throughput --------------------------------------------------------------------------


async def throughput(rig: Rig, n: int, concurrency: int) -> dict[str, float]:
    """jobs/s of `run --until-idle` over `n` pre-submitted jobs, by the registry's clock."""
    ids = [await rig.submit(stamp.FUNCTION, await rig.model()) for _ in range(n)]
    home = rig.root / f"throughput-{concurrency}"
    stamp.install(home / "modules")
    env = rig.env(home, max_concurrent_jobs=concurrency, log_level="warning")
    proc = await spawn(home / "agent.log", ["agent", "run", "--until-idle"], env)
    assert await proc.wait() == 0, (home / "agent.log").read_text()[-2000:]
    jobs = [await rig.client.get_job(i) for i in ids]
    assert all(j.status is JobStatus.COMPLETED for j in jobs)
    first = min(when(j, JobStatus.CLAIMED) for j in jobs)
    span = max(when(j, JobStatus.COMPLETED) for j in jobs) - first
    return {"jobs": n, "concurrency": concurrency, "span_s": span, "jobs_per_s": n / span}


# -- 3. idle load ---------------------------------------------------------------------------


async def workers(rig: Rig, home: Path, count: int, agents: int, **settings: Any) -> Any:
    """Start `count` pool_worker processes of `agents` agents each; (processes, logs)."""
    procs, logs = [], []
    for w in range(count):
        logs.append(home / f"worker-{w}.log")
        args = ["benchmarks.pool_worker", "--agents", str(agents)]
        args += ["--state-root", str(home / f"worker-{w}")]
        procs.append(await spawn(logs[-1], args, rig.env(home, **settings)))
    return procs, logs


def agent_ids(rig: Rig, home: Path) -> list[str]:
    found = (identity.load(state, rig.url) for state in home.glob("worker-*/agent-*"))
    return [i.agent_id for i in found if i is not None]


def schedule(first: float, most: float, horizon: float) -> list[float]:
    """When an idle agent with healthy push polls, counted from its last look."""
    times, gap, t = [], first, first
    while t <= horizon:
        times.append(t)
        gap = min(most, gap * 2)
        t += gap
    return times


async def idle(rig: Rig, plan: Plan) -> dict[str, Any]:
    """Three groups of idle agents side by side; each group's requests told apart by agent id."""
    groups: dict[str, dict[str, Any]] = {
        "push_real": rig.mqtt(),
        "push_compressed": rig.mqtt(**COMPRESSED),
        "poll_only": {},
    }
    n = plan.idle_agents
    started = {g: await workers(rig, rig.root / g, 1, n, **s) for g, s in groups.items()}
    try:
        for g, (_, logs) in started.items():
            ready = {"state": "online"} if g != "poll_only" else {}
            await wait_logged(
                logs, "push.registry_presence" if ready else "push.disabled", n, **ready
            )
        settled = time.time()
        windows = {
            "push_real": (settled + REAL_SETTLE, plan.real_window),
            "push_compressed": (settled + COMPRESSED_SETTLE, COMPRESSED_WINDOW),
            "poll_only": (settled + REAL_SETTLE, plan.real_window),
        }
        await asyncio.sleep(max(s + w for s, w in windows.values()) - time.time() + 0.5)
    finally:
        await stop([p for procs, _ in started.values() for p in procs])
    return {g: idle_figures(rig, g, *windows[g], n) for g in groups}


def idle_figures(rig: Rig, group: str, start: float, window: float, agents: int) -> Any:
    ids = set(agent_ids(rig, rig.root / group))
    assert len(ids) == agents
    ours = [r for r in requests(rig, start, start + window) if set(r.split("/")) & ids]
    hour = COMPRESSED_WINDOW if group == "push_compressed" else 3600.0  # compressed: 36 s
    out = {"agents": agents, "window_s": window, "requests": len(ours),
           "kinds": Counter(map(kind, ours)),
           "per_agent_per_hour": len(ours) / agents * hour / window}  # fmt: skip
    if group == "push_real":
        # The window opens REAL_SETTLE after the last agent's catch-up look.
        due = [t for t in schedule(30, 600, 7200) if REAL_SETTLE <= t <= REAL_SETTLE + window]
        first_hour = len(schedule(30, 600, 3600))
        out |= {"schedule_predicts": len(due) * agents, "schedule_first_hour": first_hour,
                "schedule_steady": 6}  # fmt: skip
    return out


# -- 4. a pool ------------------------------------------------------------------------------


async def pool(rig: Rig, plan: Plan) -> dict[str, Any]:
    """Agents in worker processes, one pool, push on; jobs submitted to the pool at once."""
    home = rig.root / "pool"
    module_dir = ledger.install(home / "modules")
    pool_id = (await rig.client.create_pool("bench", "push benchmark")).id
    per, count = plan.agents_per_worker, plan.pool_workers
    models = [await rig.model() for _ in range(plan.pool_jobs)]
    procs, logs = await workers(rig, home, count, per, **rig.mqtt(agent_pools=pool_id))
    try:
        await wait_logged(logs, "push.registry_presence", per * count, state="online")
        cpu0 = cpu_seconds(rig, procs)
        t0 = time.time()
        ids = [await rig.submit(ledger.FUNCTION, m, assigned_agent_pool_id=pool_id)
               for m in models]  # fmt: skip
        submitted = time.time()
        await all_completed(rig.client, pool_id, len(ids))
        await asyncio.sleep(1.0)  # the last agents report Idle and look once more
        end = time.time()
        cpu = {k: v - cpu0[k] for k, v in cpu_seconds(rig, procs).items()}
    finally:
        await stop(procs)
    jobs = await pool_jobs(rig.client, pool_id)
    return {
        "agents": per * count, "workers": count, "jobs": len(ids), "window_s": end - t0,
        "cpu_s": cpu, "cpu_ms_per_job": {k: 1000 * v / len(ids) for k, v in cpu.items()},
        "submit_s": submitted - t0, **pool_runs(jobs, ledger.runs(module_dir), t0),
        **per_agent(jobs, agent_ids(rig, home)), **load(requests(rig, t0, end), len(ids)),
    }  # fmt: skip


def cpu_seconds(rig: Rig, workers: list[asyncio.subprocess.Process]) -> dict[str, float]:
    """CPU seconds used so far by the registry, the agents, their tools, the broker and us."""

    def used(p: psutil.Process, children: bool = False) -> float:
        t = p.cpu_times()
        return t.children_user + t.children_system if children else t.user + t.system

    procs = [psutil.Process(w.pid) for w in workers]
    broker = [p for p in psutil.Process().children() if p.name() == "mosquitto"]
    return {
        "registry": used(psutil.Process(rig.registry.pid)),
        "agents": sum(used(p) for p in procs), "tools": sum(used(p, True) for p in procs),
        "broker": sum(used(p) for p in broker), "benchmark": used(psutil.Process()),
    }  # fmt: skip


async def all_completed(client: RegistryClient, pool_id: str, n: int) -> None:
    async with asyncio.timeout(900):
        while True:
            done = await client.list_jobs(assigned_agent_pool_id=pool_id, status_name="Completed")
            if done.total == n:
                return
            failed = await client.list_jobs(assigned_agent_pool_id=pool_id, status_name="Failed")
            assert not failed.total, failed.items[0].status_history
            await asyncio.sleep(0.5)


async def pool_jobs(client: RegistryClient, pool_id: str) -> list[Job]:
    jobs: list[Job] = []
    while True:  # pages of 100; a short page is the last (asking again would repeat it)
        page = (await client.list_jobs(
            assigned_agent_pool_id=pool_id, page=len(jobs) // 100 + 1, size=100)).items  # fmt: skip
        jobs += page
        if len(page) < 100:
            return jobs


def pool_runs(jobs: list[Job], runs: list[str], t0: float) -> dict[str, Any]:
    assert all(j.status is JobStatus.COMPLETED for j in jobs)
    wall = max(when(j, JobStatus.COMPLETED) for j in jobs) - t0
    ran = Counter(runs)
    claims = sum(e.name is JobStatus.CLAIMED for j in jobs for e in j.status_history)
    return {
        "wall_s": wall, "jobs_per_s": len(jobs) / wall,
        "double_runs": sum(c - 1 for c in ran.values()),
        "never_ran": len({j.id for j in jobs} - set(ran)), "extra_claims": claims - len(jobs),
    }  # fmt: skip


def per_agent(jobs: list[Job], agents: list[str]) -> dict[str, Any]:
    by = Counter(j.claimed_by for j in jobs)
    counts = [by.get(a, 0) for a in agents]
    return {"agents_that_ran": sum(c > 0 for c in counts), "jobs_per_agent_min": min(counts),
            "jobs_per_agent_median": statistics.median(counts),
            "jobs_per_agent_max": max(counts)}  # fmt: skip


def load(seen: list[str], jobs: int) -> dict[str, Any]:
    kinds = Counter(map(kind, seen))
    return {"requests": len(seen), "requests_per_job": len(seen) / jobs,
            "requests_per_job_by_kind": {k: n / jobs for k, n in kinds.most_common()}}  # fmt: skip


# -- the run --------------------------------------------------------------------------------


async def measure(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="istari-push-bench-") as tmp:
        async with rig_running(Path(tmp)) as rig:
            every = plan.poll_interval
            return {
                "pickup_mqtt": percentiles(await pickup(
                    rig, "pickup-mqtt", plan.mqtt_samples, lambda: IDLE_GAP, **rig.mqtt())),
                "pickup_poll": percentiles(await pickup(
                    rig, "pickup-poll", plan.poll_samples,
                    lambda: IDLE_GAP + random.uniform(0, every), poll_interval=every,
                )) | {"poll_interval_s": every},
                "throughput": [await throughput(rig, plan.throughput_jobs, c) for c in (1, 4)],
                "idle": await idle(rig, plan),
                "pool": await pool(rig, plan),
            }  # fmt: skip


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, aim) lines of the table."""
    m, p, i, pool = r["pickup_mqtt"], r["pickup_poll"], r["idle"], r["pool"]
    real, comp, poll = i["push_real"], i["push_compressed"], i["poll_only"]
    met = {True: "met", False: "NOT met"}
    return [
        ("pickup, push (MQTT)", f"p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms "
         f"(p50 submit {m['submit_p50_ms']:.1f}, notice+claim {m['claim_p50_ms']:.1f}, "
         f"validate {m['validate_p50_ms']:.1f}, spawn {m['spawn_p50_ms']:.1f} ms)",
         f"p50 < 5 ms: {met[m['p50_ms'] < 5]}"),
        (f"pickup, poll-only every {p['poll_interval_s']:g} s",
         f"p50 {p['p50_ms']:.0f} ms, p99 {p['p99_ms']:.0f} ms", "~half the poll interval"),
        *[(f"throughput, concurrency {t['concurrency']}", f"{t['jobs_per_s']:.1f} jobs/s "
           f"({t['jobs']} jobs in {t['span_s']:.1f} s)", "") for t in r["throughput"]],
        ("idle, push, real time (defaults)", f"{real['requests']} requests from "
         f"{real['agents']} agents in {real['window_s']:g} s (schedule: "
         f"{real['schedule_predicts']}); first hour {real['schedule_first_hour']}, then 6/h", ""),
        ("idle, push, 100x-compressed hour", f"{comp['per_agent_per_hour']:.1f} requests per "
         "agent per hour", f"< 10: {met[comp['per_agent_per_hour'] < 10]}"),
        ("idle, poll-only every 5 s", f"{poll['per_agent_per_hour']:.0f} requests per agent "
         "per hour", "720 expected"),
        (f"pool: {pool['agents']} agents, {pool['jobs']} jobs", f"{pool['wall_s']:.1f} s, "
         f"{pool['jobs_per_s']:.1f} jobs/s", ""),
        ("pool: registry requests",
         f"{pool['requests']} ({pool['requests_per_job']:.1f} per job)", ""),
        ("pool: CPU per job", ", ".join(f"{k} {v:.1f} ms" for k, v in
         pool["cpu_ms_per_job"].items()) + f" (submitting took {pool['submit_s']:.1f} s)", ""),
        ("pool: double runs / never ran", f"{pool['double_runs']} / {pool['never_ran']}", "0 / 0"),
        ("pool: jobs per agent", f"{pool['agents_that_ran']} agents ran jobs; min "
         f"{pool['jobs_per_agent_min']}, median {pool['jobs_per_agent_median']:g}, max "
         f"{pool['jobs_per_agent_max']}", ""),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under ~2 minutes)")
    plan = QUICK if parser.parse_args().quick else Plan()
    started = time.time()
    results = asyncio.run(measure(plan))
    out = save("push", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
