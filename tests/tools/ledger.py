"""The `@test:ledger` module: a quick sh tool that records each run in a ledger file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.tools.module import HOST_OS

MODULE = "@test:ledger"
FUNCTION = "@test:ledger"
VERSION = "1.0.0"
TOOL = Path(__file__).with_name("ledger.sh")


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
                    "entrypoint": "ledger.sh",
                    "run_command": "/bin/sh {entrypoint} {input_file} {output_file} {temp_dir}",
                    "function_schema": {
                        "inputs": {"part": part},
                        "outputs": [{"name": "receipt", "type": "file", "required": True}],
                    },
                }
            ]
        },
    }


def install(modules_path: Path) -> Path:
    """Install the module under `modules_path`; returns its directory (the ledger lives there)."""
    target = modules_path / "ledger"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOOL, target / "ledger.sh")
    (target / "module_manifest.json").write_text(json.dumps(manifest(), indent=2))
    return target


def runs(module_dir: Path) -> list[str]:
    """The job ids in the ledger, one per run, in the order they ran."""
    ledger = module_dir / "ledger.txt"
    return ledger.read_text().split() if ledger.exists() else []
