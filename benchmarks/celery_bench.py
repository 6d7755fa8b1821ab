"""Celery peer benchmark: what the Python job runner users would pick instead does on this machine.

Run: .venv/bin/python -m benchmarks.celery_bench [--quick]

The benchmark starts its own `redis-server` (broker and result backend) on a free loopback port,
never a Redis the machine already runs, and its own Celery worker processes:
`celery -A benchmarks.celery_tasks worker --pool prefork --concurrency N --without-gossip
--without-mingle --without-heartbeat -Q <a queue of its own>`, Celery's defaults otherwise
(prefetch 4, acks on receipt). The task runs `/bin/true` with `subprocess.run`
(benchmarks/celery_tasks.py). Measured:
1. dispatch latency, just before `apply_async` -> the task body's first line (the worker's
   `time.time()`, same host clock), and end to end, `apply_async` -> result read, over tasks
   sent one at a time, each after the previous one's result (concurrency 1);
2. jobs/s at concurrency 1 and 4 over a batch sent at once: first task start -> last task end
   by the worker's clock, and first send -> last result read by ours;
3. the idle worker (main process and pool children) after its batch and a settle: RSS, PSS,
   USS, and CPU over a window; the same for redis-server.
`measure` is synchronous (the Celery client blocks); everything started is stopped in
`finally`, its whole process group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import celery  # type: ignore[import-untyped]
import psutil
import redis

from benchmarks.celery_tasks import TASK, URL_ENV, make_app
from benchmarks.saved import footer, print_rows, save

ROOT = Path(__file__).parents[1]
REDIS = "/usr/bin/redis-server"
TOOL = "/bin/true"
READY_WITHIN = 60.0  # seconds for redis-server or a worker to start answering
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL of a process group


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    latency_samples: int = 200
    batch: int = 500
    concurrencies: tuple[int, ...] = (1, 4)
    idle_settle: float = 5.0
    idle_window: float = 10.0


QUICK = Plan(30, 100, (1, 4), 2.0, 3.0)


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on right now (the usual bind-to-0 probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after the grace; then SIGKILL to any stragglers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_GRACE)
    # Pool children outlive a main process that died first; they are still in its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        msg = f"{proc.args!r} exited {proc.returncode}: {log.read_text()[-2000:]}"
        raise RuntimeError(msg)


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Our own redis-server, no persistence, answering PING; (process, URL)."""
    port, log = free_port(), root / "redis.log"
    argv = [REDIS, "--port", str(port), "--save", "", "--appendonly", "no",
            "--bind", "127.0.0.1", "--dir", str(root), "--logfile", str(log)]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5) as client:
            deadline = time.monotonic() + READY_WITHIN
            while not answers(client):
                alive(proc, log)
                if time.monotonic() > deadline:
                    msg = f"redis-server on port {port} not answering after {READY_WITHIN} s"
                    raise RuntimeError(msg)
                time.sleep(0.01)  # a process we cannot be told by: poll, with a deadline
        yield proc, f"redis://127.0.0.1:{port}/0"
    finally:
        stop_group(proc)


def answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@dataclass
class Worker:
    """One running Celery worker, warmed up."""

    proc: subprocess.Popen[bytes]
    log: Path
    queue: str
    argv: list[str]
    concurrency: int
    started_s: float  # Popen -> the warm-up tasks' results read

    @property
    def command(self) -> list[str]:
        """The command line less the interpreter, its concurrency and queue as names."""
        names = {str(self.concurrency): "N", self.queue: "<queue>"}
        return [names.get(a, a) for a in self.argv[1:]]


@contextlib.contextmanager
def celery_worker(root: Path, app: Any, url: str, concurrency: int) -> Iterator[Worker]:
    """A prefork worker on a queue of its own, warmed up by 4 tasks per pool process."""
    queue, log = f"istari-bench-{uuid.uuid4().hex[:8]}", root / f"worker-{concurrency}.log"
    argv = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_tasks", "worker",
            "--pool", "prefork", "--concurrency", str(concurrency), "--without-gossip",
            "--without-mingle", "--without-heartbeat", "-Q", queue, "--loglevel", "WARNING",
            "-n", "istari-bench@%h"]  # fmt: skip
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, URL_ENV: url},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)  # fmt: skip
    try:
        pending = [send(app, queue) for _ in range(4 * concurrency)]
        deadline = time.monotonic() + READY_WITHIN
        while not all(r.ready() for r in pending):
            alive(proc, log)
            if time.monotonic() > deadline:
                msg = f"celery worker not done with its warm-up after {READY_WITHIN} s"
                raise RuntimeError(msg)
            time.sleep(0.01)  # readiness of another process: poll, with a deadline
        for r in pending:
            r.get()  # raises if the task failed
        yield Worker(proc, log, queue, argv, concurrency, time.monotonic() - t0)
    finally:
        stop_group(proc)


def send(app: Any, queue: str) -> Any:
    """`apply_async` of the task on `queue`: its AsyncResult."""
    return app.tasks[TASK].apply_async(args=[[TOOL]], queue=queue)


# -- measurements ---------------------------------------------------------------------------


def quantiles(values: list[float]) -> dict[str, float]:
    """p50, p99, mean and max in ms of `values` in seconds."""
    ms = [1000 * v for v in values]
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"samples": len(ms), "p50_ms": q[49], "p99_ms": q[98],
            "mean_ms": statistics.fmean(ms), "max_ms": max(ms)}  # fmt: skip


def latency(app: Any, worker: Worker, n: int) -> dict[str, Any]:
    """`n` tasks one at a time: dispatch, end to end, and the task body (spawn and wait)."""
    dispatch, total, body = [], [], []
    for _ in range(n):
        t0 = time.time()
        done = send(app, worker.queue).get(timeout=30)
        t1 = time.time()
        dispatch.append(done["start"] - t0)
        total.append(t1 - t0)
        body.append(done["end"] - done["start"])
    return {"dispatch": quantiles(dispatch), "end_to_end": quantiles(total),
            "task_body": quantiles(body)}  # fmt: skip


def throughput(app: Any, worker: Worker, n: int, concurrency: int) -> dict[str, Any]:
    """`n` tasks sent at once, then every result read in order."""
    t0 = time.time()
    results = [send(app, worker.queue) for _ in range(n)]
    sent = time.time()
    done = [r.get(timeout=300) for r in results]
    t1 = time.time()
    span = max(d["end"] for d in done) - min(d["start"] for d in done)
    return {
        "concurrency": concurrency, "tasks": n, "send_s": sent - t0,
        "worker_span_s": span, "jobs_per_s": n / span,
        "client_span_s": t1 - t0, "client_jobs_per_s": n / (t1 - t0),
        "pool_pids": len({d["pid"] for d in done}),
    }  # fmt: skip


def tree(pid: int) -> list[psutil.Process]:
    main = psutil.Process(pid)
    return [main, *main.children(recursive=True)]


def cpu_s(procs: list[psutil.Process]) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def idle(worker: Worker, server: subprocess.Popen[bytes], plan: Plan, c: int) -> dict[str, Any]:
    """Memory after `idle_settle` s with nothing to do, then CPU over `idle_window` s."""
    time.sleep(plan.idle_settle)  # the measurement itself: time passing with nothing sent
    procs, broker = tree(worker.proc.pid), psutil.Process(server.pid)
    mem = [p.memory_full_info() for p in procs]
    cpu0, broker0, t0 = cpu_s(procs), cpu_s([broker]), time.monotonic()
    time.sleep(plan.idle_window)
    window = time.monotonic() - t0
    return {
        "concurrency": c, "processes": len(procs), "window_s": window,
        "rss_mb": sum(m.rss for m in mem) / 1e6, "uss_mb": sum(m.uss for m in mem) / 1e6,
        "pss_mb": sum(m.pss for m in mem) / 1e6,  # shared pages split between the sharers
        "main_rss_mb": mem[0].rss / 1e6,
        "cpu_percent": 100 * (cpu_s(procs) - cpu0) / window,
        "redis_rss_mb": broker.memory_info().rss / 1e6,
        "redis_cpu_percent": 100 * (cpu_s([broker]) - broker0) / window,
    }  # fmt: skip


def measure(plan: Plan) -> dict[str, Any]:
    """Every figure: one redis-server, a fresh worker per concurrency, in turn."""
    out: dict[str, Any] = {"tool": TOOL, "throughput": [], "idle": [], "worker_start_s": {}}
    with tempfile.TemporaryDirectory(prefix="istari-celery-bench-") as tmp:
        root = Path(tmp)
        with redis_server(root) as (server, url):
            app = make_app(url)
            try:
                for c in plan.concurrencies:
                    with celery_worker(root, app, url, c) as worker:
                        if c == plan.concurrencies[0]:
                            out |= latency(app, worker, plan.latency_samples)
                            out["latency_concurrency"] = c
                        out["throughput"].append(throughput(app, worker, plan.batch, c))
                        out["idle"].append(idle(worker, server, plan, c))
                        out["worker_start_s"][str(c)] = worker.started_s
                        out["worker_argv"] = worker.command
            finally:
                app.close()
    return out | versions()


def versions() -> dict[str, str]:
    server = subprocess.run([REDIS, "--version"], capture_output=True, text=True).stdout
    return {"celery": celery.__version__, "redis_server": server.split()[2].removeprefix("v="),
            "redis_py": redis.__version__}  # fmt: skip


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, note) lines of the table."""
    d, e, b = r["dispatch"], r["end_to_end"], r["task_body"]
    c = r["latency_concurrency"]
    return [
        (f"dispatch, apply_async -> task body (concurrency {c})",
         f"p50 {d['p50_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms", f"{d['samples']} tasks"),
        ("end to end, apply_async -> result read", f"p50 {e['p50_ms']:.2f} ms, "
         f"p99 {e['p99_ms']:.2f} ms", f"task body (spawn {r['tool']}) p50 {b['p50_ms']:.2f} ms"),
        *[(f"throughput, concurrency {t['concurrency']}", f"{t['jobs_per_s']:.0f} jobs/s "
           f"by the worker's clock, {t['client_jobs_per_s']:.0f} jobs/s send -> last result",
           f"{t['tasks']} tasks, sent in {t['send_s']:.2f} s") for t in r["throughput"]],
        *[(f"idle worker, concurrency {i['concurrency']} ({i['processes']} processes)",
           f"RSS {i['rss_mb']:.1f} MB (PSS {i['pss_mb']:.1f}, USS {i['uss_mb']:.1f}), "
           f"CPU {i['cpu_percent']:.2f} %",
           f"redis-server RSS {i['redis_rss_mb']:.1f} MB, CPU {i['redis_cpu_percent']:.2f} %")
          for i in r["idle"]],
        ("worker start -> warm-up done", ", ".join(
            f"c{k}: {v:.2f} s" for k, v in r["worker_start_s"].items()),
         f"Celery {r['celery']}, redis-server {r['redis_server']}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about 15 s)")
    plan = QUICK if parser.parse_args().quick else Plan()
    # A SIGTERM unwinds like Ctrl-C, so the `finally`s stop redis-server and the workers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.time()
    results = measure(plan)
    out = save("celery", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
