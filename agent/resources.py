"""Whether this machine has room for another job: free memory and CPU load, checked before a claim.

The check is optional (both limits default to off) and advisory: it only delays claims, it
never stops a job that is running. `shortage` is pure so the policy is tested without load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

MiB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """The machine right now."""

    available_mb: float  # memory available to new processes without swapping
    load_per_cpu: float  # 1-minute load average divided by the CPUs this process may use


def sample() -> Sample:
    """Measure free memory and load (cheap: two small reads of /proc)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] / max(1, cpus or 1)
    return Sample(available_mb=psutil.virtual_memory().available / MiB, load_per_cpu=load)


def shortage(now: Sample, min_free_memory_mb: int, max_load_per_cpu: float) -> str | None:
    """Why another job should wait (a sentence), or None when there is room; 0 turns a check off."""
    if min_free_memory_mb and now.available_mb < min_free_memory_mb:
        return (
            f"{now.available_mb:.0f} MB of memory available, below min_free_memory_mb "
            f"({min_free_memory_mb})"
        )
    if max_load_per_cpu and now.load_per_cpu > max_load_per_cpu:
        return f"load {now.load_per_cpu:.2f} per CPU, above max_load_per_cpu ({max_load_per_cpu})"
    return None
