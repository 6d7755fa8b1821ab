"""`istari-agent demo` as a user runs it: exit 0, live progress, real artifacts on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_agent_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "agent", "demo", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("Completed") == 2
    assert "Failed: the tool exited with code 2" in out
    summaries = list(results.glob("*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["triangles"] > 0
    assert list(results.glob("*/histograms.zip"))
    assert len(list(results.glob("*/job-*.log"))) == 3
