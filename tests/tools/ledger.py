"""The `@test:ledger` module: a quick sh tool that records each run in a ledger file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tools.shmodule import ShellModule

LEDGER = ShellModule("ledger", Path(__file__).with_name("ledger.sh"))
MODULE = FUNCTION = LEDGER.function


def manifest() -> dict[str, Any]:
    """The module manifest: one function, a text model in, one receipt out."""
    return LEDGER.manifest()


def install(modules_path: Path) -> Path:
    """Install the module under `modules_path`; returns its directory (the ledger lives there)."""
    return LEDGER.install(modules_path)


def runs(module_dir: Path) -> list[str]:
    """The job ids in the ledger, one per run, in the order they ran."""
    ledger = module_dir / "ledger.txt"
    return ledger.read_text().split() if ledger.exists() else []
