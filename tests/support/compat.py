"""The example module the compat suite publishes through the official SDK."""

from __future__ import annotations

from typing import Any

EXAMPLE_MANIFEST: dict[str, Any] = {
    "module_key": "@compat:tools",
    "module_version": "1.0.0",
    "module_type": "function",
    "module_checksum": "",
    "internal": False,
    "tool_key": "compat",
    "tool_display_name": "Compat tool",
    "tool_versions": ["1.0"],
    "operating_systems": ["Ubuntu 22.04"],
    "agent_version": ">=0.1.0",
    "authors": [{"name": "Test", "email": "test@example.com"}],
    "functions": {
        "@compat:measure": [
            {
                "entrypoint": "measure.py",
                "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                "operating_systems": ["Ubuntu 22.04"],
                "tool_versions": ["1.0"],
                "function_schema": {
                    "inputs": {
                        "part": {"type": "user_model", "validation_types": ["@extension:stl"]},
                        "scale": {"type": "parameter", "validation_types": ["@number"]},
                    },
                    "outputs": [
                        {
                            "name": "report",
                            "type": "file",
                            "required": True,
                            "upload_as": "artifact",
                        }
                    ],
                },
            }
        ]
    },
}
