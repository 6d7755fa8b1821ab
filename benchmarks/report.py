"""docs/performance.md and docs/performance.png from one suite run's results (suite.py).

Run alone to rewrite the docs from a saved run:
    .venv/bin/python -m benchmarks.report benchmarks/results/suite-<time>.json

Every figure is read by its path in the results (`get`); a part that was skipped or failed
shows as "-" and its targets as "not measured", never as met.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import charts, sections
from benchmarks.figures import fmt, get, table


@dataclass(frozen=True)
class Target:
    """One aim of issue 10, as a comparison of two figures of the same run."""

    name: str
    ours: str  # path of our figure
    theirs: str | None  # path of the figure compared with (None: a fixed bound)
    bound: float | None  # the fixed bound, or the fraction of theirs
    better: str  # "lower" or "higher"
    unit: str
    versus: str = "Celery"  # what `theirs` is, for the table

    def verdict(self, suite: dict[str, Any]) -> tuple[str, str, str]:
        """(our figure, what it is compared with, met / NOT met / not measured)."""
        ours = get(suite, self.ours)
        theirs = get(suite, self.theirs) if self.theirs else self.bound
        if ours is None or theirs is None:
            return fmt(ours, self.unit), fmt(theirs, self.unit), "not measured"
        limit = theirs * self.bound if self.theirs and self.bound is not None else theirs
        met = ours < limit if self.better == "lower" else ours >= limit
        scaled = self.theirs and self.bound not in (None, 1)
        label = fmt(limit, self.unit) + (f" ({self.bound:g} x {self.versus})" if scaled else "")
        return fmt(ours, self.unit), label, "met" if met else "**NOT met**"


TARGETS = [
    Target("pickup p50 with MQTT below Celery's dispatch p50", "push.pickup_mqtt.claimed_p50_ms",
           "celery.dispatch.p50_ms", 1, "lower", "ms"),
    Target("agent overhead per job under 10 ms", "agent.overhead_wall_ms_per_job", None, 10,
           "lower", "ms"),
    Target("jobs/s at concurrency 4 at least Celery's", "push.throughput.1.jobs_per_s",
           "celery.throughput.1.jobs_per_s", 1, "higher", "jobs/s"),
    Target("idle RSS under 40 MB", "agent.idle.push.rss_mb", None, 40, "lower", "MB"),
    Target("upload at least 70 % of a plain file copy", "agent.upload.mib_per_s",
           "agent.upload.copy_mib_per_s", 0.7, "higher", "MiB/s", "a plain copy"),
    Target("10 GiB multipart upload at least 90 % of hashing + copying it", "multipart.ratio",
           None, 0.9, "higher", ""),
    Target("no double runs in the 100-agent pool", "push.pool.double_runs", None, 1, "lower", ""),
]  # fmt: skip


Section = Callable[[dict[str, Any]], list[str]]


def targets(suite: dict[str, Any]) -> list[str]:
    rows = [(t.name, *t.verdict(suite)) for t in TARGETS]
    return ["## Targets", "", *table(("target", "ours", "compared with", ""), rows), ""]


def write(suite: dict[str, Any], docs: Path) -> list[Path]:
    """Write performance.md and performance.png under `docs`; their paths."""
    png = docs / "performance.png"
    charts.draw(suite, png)
    lines = sections.header(suite) + targets(suite)
    for section in sections.ALL:
        lines += section(suite)
    md = docs / "performance.md"
    md.write_text("\n".join(lines).rstrip() + "\n")
    return [md, png]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a suite-<time>.json")
    args = parser.parse_args()
    docs = Path(__file__).parents[1] / "docs"
    for path in write(json.loads(args.results.read_text()), docs):
        print(path)


if __name__ == "__main__":
    main()
