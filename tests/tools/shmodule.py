"""Quick shell-script tool modules for scale tests and benchmarks: one function, a receipt out."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.tools.module import HOST_OS


@dataclass(frozen=True)
class ShellModule:
    """A module whose one function runs `script` with `shell`: a text model in, a receipt out."""

    name: str  # the function is `@test:<name>`, installed in `<modules>/<name>/`
    script: Path
    shell: str = "/bin/sh"

    @property
    def function(self) -> str:
        return f"@test:{self.name}"

    def manifest(self, records: Path | None = None) -> dict[str, Any]:
        """The module manifest; with `records`, the directory the tool writes its records to
        (its 4th argument: the agent runs the tool from a pinned copy of the module, so the
        copy's directory is not where a test looks)."""
        part = {"type": "user_model", "validation_types": ["@extension:txt"]}
        run = f"{self.shell} {{entrypoint}} {{input_file}} {{output_file}} {{temp_dir}}"
        if records is not None:
            run += f" {records}"
        return {
            "module_key": self.function,
            "module_version": "1.0.0",
            "module_type": "function",
            "tool_versions": ["1"],
            "operating_systems": [HOST_OS],
            "functions": {
                self.function: [
                    {
                        "entrypoint": self.script.name,
                        "run_command": run,
                        "function_schema": {
                            "inputs": {"part": part},
                            "outputs": [{"name": "receipt", "type": "file", "required": True}],
                        },
                    }
                ]
            },
        }

    def install(self, modules_path: Path) -> Path:
        """Install under `modules_path`; returns the module's directory (the tool writes its
        records there)."""
        target = (modules_path / self.name).resolve()
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.script, target / self.script.name)
        manifest = self.manifest(records=target)
        (target / "module_manifest.json").write_text(json.dumps(manifest, indent=2))
        return target
