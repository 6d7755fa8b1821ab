"""Floor benchmark: what spawning a trivial tool and one loopback HTTP round trip cost here.

Run: .venv/bin/python -m benchmarks.floor_bench [--quick]

These bound what any agent (or Celery) can do on this machine. Measured, each sequentially:
1. `/bin/true` started the way the agent starts a tool (agent/execution/local.py): one
   `os.posix_spawn` with `setsid`, stdin from /dev/null, stdout and stderr to a file, and the
   exit awaited on a pidfd in the event loop, then reaped; p50/p99 and runs/s;
2. `/bin/true` through `subprocess.run` (CPython: vfork + exec), what the Celery task does;
3. `python -c pass` with this interpreter (`sys.executable`), spawned as in 1;
4. `/bin/true` under the agent's tool supervisor (agent/execution/supervise.py: Python, the
   tool's subreaper), spawned as in 1: what the agent adds to every local tool's start;
5. an HTTP round trip over loopback: an aiohttp server in its own process (as the registry
   is) answering `GET /ping` with a tiny JSON document, one aiohttp `ClientSession`, one
   request at a time; p50/p99 and requests/s.
`measure` is a coroutine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

from agent.execution.local import exited as wait_exit
from agent.execution.supervisor import command as supervised
from benchmarks.saved import footer, print_rows, save

ROOT = Path(__file__).parents[1]
TRUE = "/bin/true"
WARMUP = 10  # samples run and dropped first: page cache, allocator, connection


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    spawn_samples: int = 2000
    python_samples: int = 300
    http_requests: int = 10000


QUICK = Plan(200, 30, 1000)


# -- spawning -------------------------------------------------------------------------------


def posix_spawn(argv: list[str], log: Path) -> int:
    """Start `argv` in a new session as the agent starts a tool's supervisor; its pid."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, out, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(out)
        os.close(null)


async def exited(pid: int) -> int:
    """Wait for `pid` as the agent does (agent/execution/local.py: a pidfd in the event loop),
    then reap it; its exit code."""
    await wait_exit(pid, lambda: _ended(pid))
    return reap(pid)


def _ended(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting to be reaped), where pidfds are missing."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def reap(pid: int) -> int:
    """The exit code of `pid`, which has ended (`wait4` with WNOHANG: the agent's call)."""
    _, status, _ = os.wait4(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status)


async def timed(n: int, once: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """`once` run `WARMUP` times, then `n` times timed one after another."""
    for _ in range(WARMUP):
        await once()
    times = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await once()
        times.append(time.perf_counter() - t)
    return summary(times, time.perf_counter() - t0)


def summary(times: list[float], wall: float) -> dict[str, float]:
    """p50, p99, mean and max in ms, and how many a second (sequentially)."""
    ms = [1000 * t for t in times]
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"samples": len(ms), "p50_ms": q[49], "p99_ms": q[98], "mean_ms": statistics.fmean(ms),
            "max_ms": max(ms), "per_s": len(ms) / wall}  # fmt: skip


async def spawn(argv: list[str], log: Path, n: int) -> dict[str, Any]:
    async def once() -> None:
        code = await exited(posix_spawn(argv, log))
        assert code == 0, f"{argv} exited {code}"

    return await timed(n, once) | {"argv": argv, "method": "os.posix_spawn, pidfd wait"}


def subprocess_run(argv: list[str], n: int) -> dict[str, Any]:
    """As Celery's task runs the tool: blocking `subprocess.run`, output to /dev/null."""

    def once() -> None:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip

    for _ in range(WARMUP):
        once()
    times = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    return summary(times, wall) | {"argv": argv, "method": "subprocess.run (vfork + exec)"}


# -- HTTP -----------------------------------------------------------------------------------


async def serve() -> None:
    """The floor's HTTP server: `GET /ping` -> `{"ok": true}`; prints its port, runs until
    SIGTERM."""

    async def ping(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(runner.addresses[0][1], flush=True)
    await stop.wait()
    await runner.cleanup()


@asynccontextmanager
async def http_server() -> AsyncIterator[str]:
    """`serve` in its own process; its base URL once it listens (it prints its port then)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.floor_bench", "--serve", cwd=ROOT,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            port = int(await proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


async def http(n: int) -> dict[str, Any]:
    async with http_server() as base, aiohttp.ClientSession(base) as session:

        async def once() -> None:
            async with session.get("/ping") as r:
                assert (await r.json())["ok"] is True

        return await timed(n, once) | {"aiohttp": aiohttp.__version__}


# -- the run --------------------------------------------------------------------------------


async def measure(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="istari-floor-bench-") as tmp:
        log = Path(tmp) / "tool.log"
        return {
            "spawn_true": await spawn([TRUE], log, plan.spawn_samples),
            "subprocess_run_true": subprocess_run([TRUE], plan.spawn_samples),
            "spawn_python": await spawn([sys.executable, "-c", "pass"], log, plan.python_samples)
            | {"python": sys.version.split()[0]},
            "spawn_supervised_true": await spawn(
                supervised(Path(tmp), Path(tmp), [TRUE]), log, plan.python_samples
            ),
            "http": await http(plan.http_requests),
        }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, note) lines of the table."""

    def ms(d: dict[str, Any]) -> str:
        return f"p50 {d['p50_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms"

    t, s, p, h = r["spawn_true"], r["subprocess_run_true"], r["spawn_python"], r["http"]
    sup = r["spawn_supervised_true"]
    return [
        (f"spawn {TRUE} (posix_spawn)", ms(t), f"{t['per_s']:.0f} runs/s sequential"),
        (f"spawn {TRUE} (subprocess.run)", ms(s), f"{s['per_s']:.0f} runs/s sequential"),
        ("spawn python -c pass", ms(p), f"{p['argv'][0]} (Python {p['python']})"),
        (f"spawn {TRUE} under the tool supervisor", ms(sup), "the agent's own start of a tool"),
        ("HTTP round trip, loopback", ms(h), f"{h['per_s']:.0f} req/s, aiohttp {h['aiohttp']}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (a few seconds)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return
    plan = QUICK if args.quick else Plan()
    started = time.time()
    results = asyncio.run(measure(plan))
    out = save("floor", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
