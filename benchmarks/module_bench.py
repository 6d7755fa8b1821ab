"""Module benchmark: from a module landing in `modules_path` to its first job being claimed.

Run: .venv/bin/python -m benchmarks.module_bench [--quick]

The registry, a broker and one `istari-agent run` (push on, module watching on, the default)
run as their own processes over loopback (the rig of `benchmarks.push_bench`). Each sample
publishes a new module (`@bench:mN`, the `@test:pinned` tool), submits a job for its function
(Pending: no agent serves it yet), then puts the module into the agent's `modules_path` and
measures, from that moment:
- `reported`: the agent's `modules.reported` log line (the registry now offers it the job);
- `claimed`: the registry's Claimed entry for the job.
Two ways of landing: `rename` (moved in whole, as `istari-agent modules install` does) and
`copy` (`shutil.copytree`, files arriving one by one, as a person's `cp -r` does).
The floor, measured in the same run: a bare `watchfiles.awatch` with the agent's batching
(`step` 50 ms) on another directory, from the same rename to its first batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from watchfiles import awatch

from agent.modules.watch import STEP_MS
from agent.protocol.states import JobStatus
from agent.submit import Submission, submit
from benchmarks.push_bench import completed, events, ready_agent, rig_running, when
from benchmarks.saved import footer, print_rows, save
from tests.tools import pinned


@dataclass(frozen=True)
class Plan:
    samples: int = 15  # per way of landing


QUICK = Plan(4)


def build(directory: Path, n: int) -> tuple[Path, dict[str, Any]]:
    """Module number `n` (its own key and function), staged in `directory`."""
    pinned.build(directory, "1.0.0", f"module {n}")
    manifest = pinned.manifest("1.0.0")
    manifest["module_key"] = f"@bench:m{n}"
    manifest["functions"] = {f"@bench:f{n}": manifest["functions"][pinned.FUNCTION]}
    (directory / "module_manifest.json").write_text(json.dumps(manifest))
    return directory, manifest


def logged_at(log: Path, event: str, module: str) -> float | None:
    for e in events(log):
        if e.get("event") == event and any(m.startswith(module + "@") for m in e["modules"]):
            return datetime.fromisoformat(e["timestamp"]).timestamp()
    return None


async def _watch(watched: Path, moved: asyncio.Event, seen: asyncio.Event) -> None:
    async for _ in awatch(watched, step=STEP_MS, rust_timeout=1000, yield_on_timeout=True):
        if moved.is_set():
            seen.set()
            return


async def floor(root: Path, n: int) -> list[float]:
    """Seconds from a rename into a watched directory to awatch's first batch."""
    watched = root / "watched"
    watched.mkdir()
    out: list[float] = []
    for i in range(n):
        staged, _ = build(root / f"floor-{i}", i)
        moved, seen = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(_watch(watched, moved, seen))
        await asyncio.sleep(1.2)  # the watcher is set up (its first timeout has passed)
        t0 = time.monotonic()
        staged.rename(watched / staged.name)
        moved.set()
        await asyncio.wait_for(seen.wait(), 30)
        out.append(time.monotonic() - t0)
        task.cancel()
    return out


async def measure(plan: Plan, root: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"floor_s": await floor(root, plan.samples)}
    async with rig_running(root) as rig:
        home = root / "agent"
        (home / "modules").mkdir(parents=True)
        model = root / "part.txt"
        model.write_text("model")
        async with ready_agent(rig, home, **rig.mqtt()) as log:
            await asyncio.sleep(1.5)  # the watcher's first tick: it watches from here
            n = 0
            for way in ("rename", "copy"):
                samples = []
                for _ in range(plan.samples):
                    n += 1
                    staged, manifest = build(root / f"staged-{n}", n)
                    await rig.client.publish_module(manifest)
                    fn = next(iter(manifest["functions"]))
                    job = await submit(rig.client, Submission(model, fn, {}))
                    t0 = time.time()
                    if way == "rename":
                        staged.rename(home / "modules" / staged.name)
                    else:
                        shutil.copytree(staged, home / "modules" / staged.name)
                    done = await completed(rig.client, job.id)
                    reported = logged_at(log, "modules.reported", manifest["module_key"])
                    claimed = when(done, JobStatus.CLAIMED) - t0
                    told = (reported or float("nan")) - t0
                    samples.append({"claimed_s": claimed, "reported_s": told})
                results[way] = samples
    return results


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    def ms(values: list[float]) -> str:
        return f"p50 {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

    rows = [("floor: awatch sees a rename", ms(results["floor_s"]), "")]
    for way in ("rename", "copy"):
        for what in ("reported", "claimed"):
            values = [s[f"{what}_s"] for s in results[way]]
            rows.append((f"{way}: landed -> {what}", ms(values), ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="istari-module-bench-") as tmp:
        results = asyncio.run(measure(plan, Path(tmp)))
    out = save("modules", asdict(plan), results, started)
    print_rows(summary(results))
    footer(results, out)


if __name__ == "__main__":
    main()
