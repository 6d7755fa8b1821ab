"""Every benchmark in one go: the floors, the peer (Celery), the agent, the scaling curves.

Run: benchmarks/run [--quick] [--only NAME ...]   (it sets up what the benchmarks need first)

Each part runs in this process, one after another, on a machine that should be otherwise
quiet; every figure is reported next to a floor or a peer measured in the same run. The
results go to `benchmarks/results/suite-<time>.json` and `docs/performance.md` (with
`docs/performance.png`) is written from them (benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import psutil

from agent import logs
from benchmarks import report
from benchmarks.saved import RESULTS

ROOT = Path(__file__).parents[1]


@dataclass(frozen=True)
class Part:
    """One benchmark module of the suite."""

    name: str
    module: str  # benchmarks.<module>: a `Plan`, `QUICK` and `measure(plan[, root])`
    title: str
    expect_s: float  # about how long its full run takes here (for the progress line)
    needs: tuple[str, ...] = ()  # commands it cannot run without


PARTS = [
    Part("floor", "floor_bench", "floors: spawning a tool, a loopback HTTP round trip", 20),
    Part("celery", "celery_bench", "peer: Celery with a Redis broker", 90,
         ("redis-server", "celery")),
    Part("agent", "agent_bench", "the agent: overhead per job, end to end, idle, 1 GiB upload",
         100),
    Part("download", "download_bench",
         "downloads: a 10 GiB input against a plain copy, RSS, a cache hit", 240),
    Part("push", "push_bench", "the agent: pickup, throughput, idle load, a 100-agent pool",
         330, ("mosquitto",)),
    Part("scale", "scale_bench", "scaling: agents 1-100, queue depth 10-10,000", 225,
         ("mosquitto",)),
    Part("multipart", "multipart_bench",
         "multipart: a 10 GiB output upload against hashing and copying it", 150),
    Part("slurm", "slurm_bench", "Slurm: the agent against sbatch --wait", 75,
         ("slurmctld", "sbatch")),
]  # fmt: skip


def missing(part: Part) -> list[str]:
    """The commands a part needs that are not installed."""
    bin_dir = Path(sys.executable).parent
    return [c for c in part.needs if not shutil.which(c) and not (bin_dir / c).exists()]


async def _call(measure: Callable[..., Any], plan: Any, root: Path) -> Any:
    wants_root = len(inspect.signature(measure).parameters) > 1
    result = measure(plan, root) if wants_root else measure(plan)
    return await result if inspect.isawaitable(result) else result


def run_part(part: Part, quick: bool) -> dict[str, Any]:
    """One part's results, with its plan and how long it took (or the error it ended with)."""
    mod = importlib.import_module(f"benchmarks.{part.module}")
    plan = mod.QUICK if quick else mod.Plan()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"istari-suite-{part.name}-") as tmp:
        try:
            results = asyncio.run(_call(mod.measure, plan, Path(tmp)))
        except Exception as e:  # one broken part must not lose the others' figures
            traceback.print_exc()
            results = {"error": f"{type(e).__name__}: {e}"}
    took = time.monotonic() - started
    plain = asdict(plan) if is_dataclass(plan) and not isinstance(plan, type) else {}
    return {"results": results, "plan": plain,
            "seconds": round(took, 1)}  # fmt: skip


def machine() -> dict[str, Any]:
    """What ran the suite (the figures mean little without it)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = cpu
    memory = round(psutil.virtual_memory().total / 2**30, 1)
    return {
        "cpus": os.cpu_count(), "cpu": model, "memory_gib": memory,
        "python": sys.version.split()[0], "os": platform.platform(), "commit": commit,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every part")
    parser.add_argument("--only", nargs="*", choices=[p.name for p in PARTS], default=None)
    parser.add_argument("--no-report", action="store_true", help="do not rewrite the docs")
    args = parser.parse_args()
    # A SIGTERM ends the run as an exception would: every part's `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logs.configure("warning", json=False)
    parts = [p for p in PARTS if args.only is None or p.name in args.only]
    total = sum(p.expect_s for p in parts) * (0.3 if args.quick else 1)
    print(f"==> {len(parts)} parts, about {total / 60:.0f} minutes on 2 cores; keep the "
          "machine otherwise quiet", flush=True)  # fmt: skip
    started = time.monotonic()
    suite: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "quick": args.quick,
                             "machine": machine(), "parts": {}}  # fmt: skip
    for n, part in enumerate(parts, 1):
        print(f"==> [{n}/{len(parts)}] {part.title}", flush=True)
        if lacking := missing(part):
            print(f"    skipped: {', '.join(lacking)} not installed (run benchmarks/setup)")
            suite["parts"][part.name] = {"skipped": f"{', '.join(lacking)} not installed"}
            continue
        done = run_part(part, args.quick)
        suite["parts"][part.name] = done
        state = "FAILED: " + done["results"]["error"] if "error" in done["results"] else "done"
        so_far = time.monotonic() - started
        print(f"    {state} in {done['seconds']:.0f} s ({so_far / 60:.1f} min so far)", flush=True)
    suite["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"suite-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(suite, indent=2, default=str))
    print(f"==> results: {out} ({suite['seconds'] / 60:.1f} min)")
    if not args.no_report:
        written = report.write(suite, ROOT / "docs")
        print(f"==> wrote {', '.join(str(p.relative_to(ROOT)) for p in written)}")


if __name__ == "__main__":
    main()
