"""The `@test:stamp` module: a quick bash tool that stamps the moment it started, per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tools.shmodule import ShellModule

STAMP = ShellModule("stamp", Path(__file__).with_name("stamp.sh"), shell="/bin/bash")
MODULE = FUNCTION = STAMP.function


def manifest() -> dict[str, Any]:
    """The module manifest: one function, a text model in, one receipt out."""
    return STAMP.manifest()


def install(modules_path: Path) -> Path:
    """Install the module under `modules_path`; returns its directory (the stamps go there)."""
    return STAMP.install(modules_path)


def started(module_dir: Path, job_id: str) -> float | None:
    """When the tool started for `job_id` (seconds since the epoch), or None if it has not."""
    try:
        text = (module_dir / f"{job_id}.start").read_text().strip()
    except FileNotFoundError:
        return None
    # $EPOCHREALTIME follows the locale's decimal point.
    return float(text.replace(",", ".")) if text else None
