"""The `@test:stamp` module: a quick bash tool that stamps the moment it started, per job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.tools.module import HOST_OS

MODULE = "@test:stamp"
FUNCTION = "@test:stamp"
VERSION = "1.0.0"
TOOL = Path(__file__).with_name("stamp.sh")


def manifest() -> dict[str, Any]:
    """The module manifest: one function, a text model in, one receipt out."""
    part = {"type": "user_model", "validation_types": ["@extension:txt"]}
    return {
        "module_key": MODULE,
        "module_version": VERSION,
        "module_type": "function",
        "tool_versions": ["1"],
        "operating_systems": [HOST_OS],
        "functions": {
            FUNCTION: [
                {
                    "entrypoint": "stamp.sh",
                    "run_command": "/bin/bash {entrypoint} {input_file} {output_file} {temp_dir}",
                    "function_schema": {
                        "inputs": {"part": part},
                        "outputs": [{"name": "receipt", "type": "file", "required": True}],
                    },
                }
            ]
        },
    }


def install(modules_path: Path) -> Path:
    """Install the module under `modules_path`; returns its directory (the stamps go there)."""
    target = modules_path / "stamp"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOOL, target / "stamp.sh")
    (target / "module_manifest.json").write_text(json.dumps(manifest(), indent=2))
    return target


def started(module_dir: Path, job_id: str) -> float | None:
    """When the tool started for `job_id` (seconds since the epoch), or None if it has not."""
    try:
        text = (module_dir / f"{job_id}.start").read_text().strip()
    except FileNotFoundError:
        return None
    # $EPOCHREALTIME follows the locale's decimal point.
    return float(text.replace(",", ".")) if text else None
