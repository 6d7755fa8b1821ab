"""Agent resources benchmark: the idle footprint, a 1 GiB output upload, what the RSS is made of.

Run: .venv/bin/python -m benchmarks.resources_bench [--quick]   (also part of agent_bench)

push_bench's rig: mosquitto, the registry (its own process, debug access log) and each agent
as its own `istari-agent run` process over loopback, defaults but for the rig's settings.
1. idle: two agents side by side, push on (the rig's broker) and poll-only (default 5 s),
   each after registering and settling, for a window: RSS and USS of the agent process (it
   has no children when idle), its CPU seconds, the registry requests it made;
2. upload: an `@test:big_output` job writes one 1 GiB output (tests/tools/behave.py); the
   registry's Uploading -> Completed against a plain copy of a file as big on the same disk
   (read + write + fsync, 1 MiB chunks), and the agent's RSS sampled every 10 ms;
3. rss_breakdown (benchmarks/rss_imports.py): RSS after importing each dependency in turn,
   and what `agent.cli` imports on top of the `run` path (`agent.service`), each in a fresh
   interpreter.
"MB" is MiB (2^20 bytes), as in registry_bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from agent import identity
from agent.protocol.states import JobStatus
from agent.submit import Submission, follow, submit
from benchmarks import rss_imports
from benchmarks.push_bench import (
    AGENT_ENV,
    REAL_SETTLE,
    Rig,
    events,
    kind,
    ready_agent,
    requests,
    rig_running,
    when,
)
from benchmarks.registry_bench import MiB, copy_file, make_blob
from benchmarks.saved import footer, print_rows, save
from tests.tools import module, stamp


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    idle_window: float = 30.0
    upload_mib: int = 1024


QUICK = Plan(10.0, 128)


@contextlib.contextmanager
def workspace(root: Path | None, prefix: str) -> Iterator[Path]:
    """`root` when given (the suite's), else a temporary directory removed afterwards."""
    if root is not None:
        yield root
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def agent_process(home: Path) -> psutil.Process:
    """The `istari-agent run` that `ready_agent` started in `home` (a child of this process)."""
    state = str(home / "state")
    for proc in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(AGENT_ENV + "STATE_PATH") == state:
                return proc
    msg = f"no agent process for {home}"
    raise LookupError(msg)


# -- 1. idle --------------------------------------------------------------------------------


async def idle(rig: Rig, window: float) -> dict[str, Any]:
    """Two idle agents side by side (push on, poll-only); each one's footprint over `window`."""
    homes = {"push": rig.root / "idle-push", "poll": rig.root / "idle-poll"}
    for home in homes.values():
        stamp.install(home / "modules")
    async with ready_agent(rig, homes["push"], **rig.mqtt()), ready_agent(rig, homes["poll"]):
        procs = {name: agent_process(home) for name, home in homes.items()}
        await asyncio.sleep(REAL_SETTLE)  # the catch-up look and the first reports are done
        cpu0 = {name: cpu(p) for name, p in procs.items()}
        start = time.time()
        rss_max = dict.fromkeys(procs, 0)
        while time.time() < start + window:
            for name, p in procs.items():
                rss_max[name] = max(rss_max[name], p.memory_info().rss)
            await asyncio.sleep(0.5)
        end = time.time()
        out: dict[str, Any] = {"window_s": end - start}
        for name, p in procs.items():
            ident = identity.load(homes[name] / "state", rig.url)
            assert ident is not None
            ours = [r for r in requests(rig, start, end) if ident.agent_id in r.split("/")]
            out[name] = footprint(p, cpu(p) - cpu0[name], end - start) | {
                "rss_max_mb": rss_max[name] / MiB, "requests": len(ours),
                "requests_by_kind": Counter(map(kind, ours)),
            }  # fmt: skip
    return out


def cpu(proc: psutil.Process) -> float:
    """CPU seconds so far, to the nanosecond: the sum over the process's threads of
    /proc/<pid>/task/*/schedstat (`cpu_times` counts 10 ms ticks: too coarse when idle). A
    thread that ended is not counted; an idle agent starts none."""
    total = 0
    for stat in Path(f"/proc/{proc.pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):
            total += int(stat.read_text().split()[0])
    return total / 1e9


def footprint(proc: psutil.Process, cpu_s: float, window: float) -> dict[str, Any]:
    mem = proc.memory_full_info()
    return {
        "rss_mb": mem.rss / MiB, "uss_mb": mem.uss / MiB, "pss_mb": mem.pss / MiB,
        "threads": proc.num_threads(), "children": len(proc.children(recursive=True)),
        "cpu_s": cpu_s, "cpu_percent": 100 * cpu_s / window,
        "cpu_ms_per_min": 1000 * cpu_s * 60 / window,
    }  # fmt: skip


# -- 2. a 1 GiB output ----------------------------------------------------------------------


class RSSTrace:
    """A process's RSS every 10 ms, in a thread: (time.time(), bytes) samples."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), self.proc.memory_info().rss))
            if self._stop.wait(0.01):
                return

    def peak(self, start: float, end: float) -> int:
        return max(rss for t, rss in self.samples if start <= t <= end)

    def __enter__(self) -> RSSTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def plain_copy(root: Path, mib: int) -> float:
    """Seconds to copy a `mib` MiB file on the disk the agent and the registry use."""
    src, dst = root / "copy-src.bin", root / "copy-dst.bin"
    make_blob(src, mib)
    try:
        start = time.perf_counter()
        copy_file(src, dst)
        return time.perf_counter() - start
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


async def upload(rig: Rig, mib: int) -> dict[str, Any]:
    """One `@test:big_output` job of `mib` MiB through a serving agent with push."""
    home = rig.root / "upload"
    module.install(home / "modules")
    copy_s = await asyncio.to_thread(plain_copy, rig.root, mib)
    work = Submission(rig.root / "part.txt", module.fn("big_output"), {"megabytes": mib})
    async with ready_agent(rig, home, **rig.mqtt()) as log:
        with RSSTrace(agent_process(home)) as trace:
            await asyncio.sleep(0.5)  # a baseline before the job
            await rig.client.publish_module(module.manifest())  # jobs need a published function
            job_id = (await submit(rig.client, work)).id
            async with asyncio.timeout(600):
                job = await follow(rig.client, job_id, lambda s, m: None, interval=0.1)
    assert job.status is JobStatus.COMPLETED, job.status_history
    running, uploading, done = (when(job, s) for s in (JobStatus.RUNNING, JobStatus.UPLOADING,
                                                         JobStatus.COMPLETED))  # fmt: skip
    output = next(
        datetime.fromisoformat(e["timestamp"]).timestamp()
        for e in events(log)
        if e.get("event") == "job.output_uploaded" and e.get("output") == "out"
    )
    baseline = trace.samples[0][1]
    upload_s = done - uploading
    put_start, put_end = blob_put(rig, uploading, done)
    return {
        "mib": mib, "tool_s": uploading - running, "upload_s": upload_s,
        "mib_per_s": mib / upload_s, "output_s": output - uploading,
        "before_put_s": put_start - uploading, "put_s": put_end - put_start,
        "after_put_s": done - put_end,
        "output_mib_per_s": mib / (output - uploading), "copy_s": copy_s,
        "copy_mib_per_s": mib / copy_s, "vs_copy": copy_s / upload_s,
        "baseline_rss_mb": baseline / MiB, "peak_rss_mb": trace.peak(uploading, done) / MiB,
        "peak_rss_job_mb": trace.peak(0, float("inf")) / MiB,
        "growth_mb": (trace.peak(uploading, done) - baseline) / MiB,
        "rss_samples": len(trace.samples), "same_disk": True,
    }  # fmt: skip


def blob_put(rig: Rig, start: float, end: float) -> tuple[float, float]:
    """When the registry began and ended the longest blob `PUT` between `start` and `end`."""
    puts = [
        (datetime.fromisoformat(e["timestamp"]).timestamp(), e["ms"] / 1000)
        for e in events(rig.log_path)
        if e.get("event") == "registry.request" and e["method"] == "PUT"
        and e["path"].startswith("/blobs/")
        and start <= datetime.fromisoformat(e["timestamp"]).timestamp() <= end
    ]  # fmt: skip
    logged, took = max(puts, key=lambda p: p[1])
    return logged - took, logged


# -- the run --------------------------------------------------------------------------------


async def measure(plan: Plan, root: Path | None = None) -> dict[str, Any]:
    with workspace(root, "istari-resources-bench-") as tmp:
        async with rig_running(tmp) as rig:
            return {
                "idle": await idle(rig, plan.idle_window),
                "upload": await upload(rig, plan.upload_mib),
                "rss_breakdown": await asyncio.to_thread(rss_imports.breakdown),
            }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, aim) lines of the table."""
    i, u, b = r["idle"], r["upload"], r["rss_breakdown"]
    met = {True: "met", False: "NOT met"}

    def at_rest(name: str, label: str) -> tuple[str, str, str]:
        a = i[name]
        return (f"idle, {label}", f"RSS {a['rss_mb']:.1f} MB (USS {a['uss_mb']:.1f}), CPU "
                f"{a['cpu_percent']:.2f} % of a core ({a['cpu_ms_per_min']:.0f} ms/min), "
                f"{a['requests']} requests in {i['window_s']:.0f} s",
                f"RSS < 40 MB: {met[a['rss_mb'] < 40]}")  # fmt: skip

    chain = ", ".join(f"{s['import']} +{s['added_rss_mb']:.1f}" for s in b["chain"])
    return [
        at_rest("push", "push on"), at_rest("poll", "poll-only (5 s)"),
        (f"upload of a {u['mib']} MiB output", f"{u['mib_per_s']:.0f} MiB/s (Uploading -> "
         f"Completed {u['upload_s']:.2f} s: {u['before_put_s']:.2f} s to the blob PUT "
         f"(hashing), PUT {u['put_s']:.2f} s, then {u['after_put_s']:.2f} s)", ""),
        ("plain file copy, same disk", f"{u['copy_mib_per_s']:.0f} MiB/s; upload "
         f"{u['vs_copy']:.2f} x copy", f">= 0.70: {met[u['vs_copy'] >= 0.7]}"),
        ("agent RSS during the upload", f"{u['baseline_rss_mb']:.1f} MB -> peak "
         f"{u['peak_rss_mb']:.1f} MB (+{u['growth_mb']:.1f})", "flat"),
        ("RSS by import (MB)", f"python {b['python_rss_mb']:.1f}, {chain}", ""),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    plan = QUICK if parser.parse_args().quick else Plan()
    started = time.time()
    results = asyncio.run(measure(plan))
    out = save("resources", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
