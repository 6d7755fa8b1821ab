"""What an agent process's RSS is made of: RSS after each import, each in a fresh interpreter.

Used by resources_bench (part 3). Nothing is imported into this process: every figure comes
from a child `python` (this interpreter) that imports the modules and reads its own
/proc/self/smaps_rollup, so the probe adds nothing of its own (psutil is one of the steps).
"MB" is MiB (2^20 bytes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

MiB = 2**20


# What the agent imports, in an order where each step adds its own part.
CHAIN = [
    "asyncio", "click", "structlog", "pydantic.main", "pydantic_settings", "aiohttp",
    "aiohttp.web", "psutil", "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.ciphers.aead", "prometheus_client", "aiomqtt",
    "agent.service", "agent.cli",
]  # fmt: skip
# Importing the modules named in argv one by one: (name, RSS, USS) after each, as JSON; no
# psutil (it is measured as one of the steps).
_PROBE = r"""
import importlib, json, sys
def mem():
    f = dict(l.split(":") for l in open("/proc/self/smaps_rollup").read().splitlines()[1:])
    kb = lambda k: int(f[k].split()[0]) * 1024
    return kb("Rss"), kb("Private_Clean") + kb("Private_Dirty")
out = [("python", *mem())]
for name in sys.argv[1:]:
    importlib.import_module(name)
    out.append((name, *mem()))
print(json.dumps(out))
"""
_ADDED = r"""
import sys, json
import agent.service
before = set(sys.modules)
import agent.cli
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)


def probe(*names: str) -> list[tuple[str, int, int]]:
    return [(str(n), int(r), int(u)) for n, r, u in json.loads(python("-c", _PROBE, *names).stdout)]


def breakdown() -> dict[str, Any]:
    """RSS/USS after each import of CHAIN; each dependency alone; what `agent.cli` adds."""
    chain = probe(*CHAIN)
    steps = [
        {"import": n, "rss_mb": r / MiB, "uss_mb": u / MiB, "added_rss_mb": (r - chain[i][1]) / MiB}
        for i, (n, r, u) in enumerate(chain[1:])
    ]  # fmt: skip
    alone = {}
    for name in CHAIN[1:-2]:
        (_, r0, _), (_, r1, _) = probe("asyncio", name)[1:]
        alone[name] = (r1 - r0) / MiB
    added = json.loads(python("-c", _ADDED).stdout)
    by_package = Counter(
        ".".join(m.split(".")[: 2 if m.startswith("agent.") else 1]) for m in added
    )
    python("-X", "importtime", "-c", "import agent.cli")  # warm the bytecode caches
    timed = python("-X", "importtime", "-c", "import agent.cli").stderr
    return {"python_rss_mb": chain[0][1] / MiB, "chain": steps, "alone_after_asyncio_mb": alone,
            "cli_adds_over_run_path": {"modules": len(added), "by_package": by_package},
            "import_ms": import_times(timed)}  # fmt: skip


def import_times(text: str) -> dict[str, Any]:
    """`-X importtime` output: `agent.cli`'s ms, and self ms summed per top-level package."""
    self_us: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = (f.strip() for f in line.removeprefix("import time:").split("|"))
        self_us[name.split(".")[0]] += int(own)
        if name == "agent.cli":
            total = int(cumulative)
    top = {k: v / 1000 for k, v in self_us.most_common(10)}
    return {"agent_cli_ms": total / 1000, "self_ms_by_package": top}
