"""docs/performance.png: four panels drawn with matplotlib (headless, the Agg backend).

Latency (ours beside the floors and Celery), throughput at concurrency 1 and 4 (ours and
Celery), and the two scaling curves (against the number of agents, against queue depth).
A figure that was not measured is left out of its panel, never drawn as zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.figures import get

OURS, PEER, FLOOR = "#1565c0", "#c62828", "#9e9e9e"
SECOND = "#ef6c00"  # a second figure of ours, on its own axis


def _bars(ax: Axes, items: list[tuple[str, Any, str]], unit: str, title: str) -> None:
    shown = [(label, float(v), colour) for label, v, colour in items if v is not None]
    if not shown:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    for y, (_, value, colour) in enumerate(shown):
        ax.barh(y, value, color=colour)
        ax.text(value, y, f" {value:,.1f} {unit}", va="center", fontsize=8)
    ax.set_yticks(range(len(shown)), [s[0] for s in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(unit, fontsize=8)
    ax.margins(x=0.3)


def _latency(ax: Axes, s: dict[str, Any]) -> None:
    _bars(ax, [
        ("spawn /bin/true (floor)", get(s, "floor.spawn_true.p50_ms"), FLOOR),
        ("HTTP round trip (floor)", get(s, "floor.http.p50_ms"), FLOOR),
        ("Celery: dispatch", get(s, "celery.dispatch.p50_ms"), PEER),
        ("ours: pickup (→ Claimed)", get(s, "push.pickup_mqtt.claimed_p50_ms"), OURS),
        ("ours: → tool's first line", get(s, "push.pickup_mqtt.p50_ms"), OURS),
        ("Celery: → result", get(s, "celery.end_to_end.p50_ms"), PEER),
    ], "ms", "Latency, p50 (MQTT push for ours)")  # fmt: skip


def _throughput(ax: Axes, s: dict[str, Any]) -> None:
    _bars(ax, [
        ("ours, concurrency 1", get(s, "push.throughput.0.jobs_per_s"), OURS),
        ("Celery, concurrency 1", get(s, "celery.throughput.0.jobs_per_s"), PEER),
        ("ours, concurrency 4", get(s, "push.throughput.1.jobs_per_s"), OURS),
        ("Celery, concurrency 4", get(s, "celery.throughput.1.jobs_per_s"), PEER),
    ], "jobs/s", "Throughput")  # fmt: skip


def _curve(ax: Axes, points: list[dict[str, Any]], x: str, ys: list[tuple[str, str]],
           title: str, log_x: bool) -> None:  # fmt: skip
    """Each y on its own scale: the first on the left axis, the second on the right."""
    if not points:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    axes = [ax, ax.twinx()] if len(ys) > 1 else [ax]
    for side, colour, (key, label) in zip(axes, (OURS, SECOND), ys, strict=False):
        pts = [(p[x], p[key]) for p in points if p.get(key) is not None]
        if pts:
            side.plot(*zip(*pts, strict=True), marker="o", color=colour, label=label)
        side.set_ylabel(label, fontsize=8, color=colour)
        side.tick_params(labelsize=8)
        side.set_ylim(bottom=0)
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x.replace("_", " "), fontsize=8)


def draw(suite: dict[str, Any], out: Path) -> None:
    """Draw the four panels into `out` (PNG)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
    _latency(axes[0][0], suite)
    _throughput(axes[0][1], suite)
    _curve(axes[1][0], get(suite, "scale.agents") or [], "agents",
           [("jobs_per_s", "jobs/s"), ("pickup_p99_ms", "pickup p99 (ms)")],
           "Against the number of agents", log_x=True)  # fmt: skip
    _curve(axes[1][1], get(suite, "scale.depth") or [], "depth",
           [("pickup_p99_ms", "pickup p99 (ms)"),
            ("available_jobs_p50_ms", "available_jobs p50 (ms)")],
           "Against queue depth (pending jobs)", log_x=True)  # fmt: skip
    fig.suptitle(f"istari-agent benchmarks, {suite['date']} ({suite['machine']['cpus']} cores)")
    fig.savefig(out, dpi=100)
    plt.close(fig)
