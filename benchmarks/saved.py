"""Where each benchmark's results go, and how its table is printed.

Standard library only: the Celery side and the floor's HTTP server import it without the
agent's imports.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

Row = tuple[str, str, str]  # (measure, figure, aim or note)


def save(kind: str, plan: dict[str, Any], results: dict[str, Any], started: float) -> Path:
    """Add the plan, the duration and the machine to `results`; write them to results/."""
    results |= {"plan": plan, "duration_s": time.time() - started,
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    return out


def print_rows(table: list[Row]) -> None:
    width = max(len(r[0]) for r in table)
    for measure, figure, aim in table:
        print(f"{measure:<{width}}  {figure}" + (f"  [{aim}]" if aim else ""))


def footer(results: dict[str, Any], out: Path) -> None:
    """The last line of a benchmark's output: how long it took, where its results are."""
    print(f"({results['duration_s']:.0f} s; {out})")
