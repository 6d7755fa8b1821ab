"""The `@test:pinned` module: its tool waits at a gate, then copies `data.txt` from its own
module directory into its output, so a test can change the module while the tool waits and see
which version of the files the job ran with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODULE = "@test:pinned"
FUNCTION = "@test:pinned_data"
HOST_OS = "Ubuntu 22.04"

TOOL = """\
import json, pathlib, sys, time
inputs, output, temp = (pathlib.Path(a) for a in sys.argv[1:4])
params = json.loads(inputs.read_text())
if params.get("gate", {}).get("value"):
    (temp / "waiting").touch()
    deadline = time.monotonic() + 120
    while not (temp / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
data = (pathlib.Path(__file__).parent / "data.txt").read_text()
(temp / "data.txt").write_text(data)
output.write_text(json.dumps([{"name": "data", "type": "file", "path": str(temp / "data.txt")}]))
"""


def manifest(version: str) -> dict[str, Any]:
    return {
        "module_key": MODULE,
        "module_version": version,
        "module_type": "function",
        "tool_versions": ["1"],
        "operating_systems": [HOST_OS],
        "functions": {
            FUNCTION: [
                {
                    "entrypoint": "tool.py",
                    "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                    "function_schema": {
                        "inputs": {
                            "part": {"type": "user_model", "validation_types": ["@extension:txt"]},
                            "gate": {
                                "type": "parameter",
                                "validation_types": ["@boolean"],
                                "optional": True,
                            },
                        },
                        "outputs": [{"name": "data", "type": "file", "required": True}],
                    },
                }
            ]
        },
    }


def build(directory: Path, version: str, data: str) -> Path:
    """Write the module (version `version`, whose tool outputs `data`) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tool.py").write_text(TOOL)
    (directory / "data.txt").write_text(data)
    (directory / "module_manifest.json").write_text(json.dumps(manifest(version), indent=2))
    return directory
