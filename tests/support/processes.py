"""Processes seen from outside: whether one is gone, and which run in a work directory."""

from __future__ import annotations

from pathlib import Path

import psutil


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose working directory is `directory` (a tool and its children)."""
    found = []
    for p in psutil.process_iter(["cwd", "status"]):
        if p.info["cwd"] == str(directory) and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found
