"""The `@test:behaviours` module: installs `behave.py` with one function per behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

MODULE = "@test:behaviours"
VERSION = "1.0.0"
TOOL_KEY = "behaviours"  # a user_link's file is <name>.istari_behaviours_metadata_<kind>
HOST_OS = "Ubuntu 22.04"
TOOL = Path(__file__).with_name("behave.py")

_PART = {"type": "user_model", "validation_types": ["@extension:txt"]}
_OUT = [{"name": "out", "type": "file", "required": True}]
_DIR = [{"name": "out", "type": "directory", "required": True}]


def _param(kind: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "parameter", "validation_types": [kind], "optional": optional}


# function -> (extra inputs, outputs)
FUNCTIONS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "echo": (
        {"label": _param("@string"), "count": _param("@number", optional=True)},
        [
            {"name": "copy", "type": "file", "required": True},
            {"name": "record", "type": "file", "required": True},
            {"name": "extra", "type": "file", "required": False},
        ],
    ),
    "exit": ({"code": _param("@number")}, _OUT),
    # writes over its input in place, then outputs what it wrote (the input cache must not care)
    "scribble": ({}, _OUT),
    "crash": ({}, _OUT),
    "sleep": ({"seconds": _param("@number"), "ignore_term": _param("@boolean", True)}, _OUT),
    "spam": ({"megabytes": _param("@number")}, _OUT),
    "gate": ({"code": _param("@number")}, _OUT),
    "report": ({"code": _param("@number")}, _OUT),
    "burn": ({"megabytes": _param("@number"), "seconds": _param("@number")}, _OUT),
    "big_output": ({"megabytes": _param("@number")}, _OUT),
    "secret": ({"api_auth": {"type": "auth_info", "validation_types": ["@token:service"]}}, _OUT),
    # the job's resource or a resource id in the parameters fills `sheet`; `part` is optional
    "link": (
        {
            "part": {**_PART, "optional": True},
            "sheet": {
                "type": "user_link",
                "validation_types": ["@extension:istari_{tool_key}_metadata"],
            },
        },
        [
            {"name": "seen", "type": "file", "required": True},
            {"name": "record", "type": "file", "required": True},
        ],
    ),
    "no_output": ({}, _OUT),
    "bad_output": ({}, _OUT),
    "missing_output": ({}, _OUT),
    "outside_output": ({"target": _param("@string")}, _OUT),
    "dir_output": ({}, _DIR),
    "show_config": ({}, _OUT),
    # outputs.py/upload.py: a new model, and a new revision of the job's model (version_of)
    "derive": (
        {},
        [
            {"name": "derived", "type": "file", "required": True, "upload_as": "model"},
            {"name": "next", "type": "file", "required": True, "version_of": "part"},
        ],
    ),
    "revise": ({}, [{"name": "next", "type": "file", "required": True, "version_of": "part"}]),
    "revise_link": (
        {
            "sheet": {
                "type": "user_link",
                "validation_types": ["@extension:istari_{tool_key}_metadata"],
            },
        },
        [{"name": "next", "type": "file", "required": True, "version_of": "sheet"}],
    ),
    "revise_label": (
        {"label": _param("@string")},
        [{"name": "next", "type": "file", "required": True, "version_of": "label"}],
    ),
    # hostile.py: tools that try to make the agent do harm
    "link_farm": (
        {"target": _param("@string")},
        [{"name": "out", "type": "directory", "required": True}],
    ),
    "fifo_output": ({}, _OUT),
    "daemon": ({}, _OUT),
    "kill_supervisor": ({}, _OUT),
    "deep_output": ({}, _OUT),
    "fill": ({"megabytes": _param("@number"), "seconds": _param("@number")}, _OUT),
    "log_link": ({"target": _param("@string")}, _OUT),
    "fifo_document": ({}, _OUT),
    "plant": ({"target": _param("@string")}, _DIR),
}


def fn(behaviour: str) -> str:
    """The function name of a behaviour."""
    return f"@test:{behaviour}"


def manifest(run_command: str | None = None) -> dict[str, Any]:
    """The module manifest (a different `run_command` makes a deliberately broken one)."""
    command = (
        run_command or "python3 {entrypoint} {function_name} {input_file} {output_file} {temp_dir}"
    )
    return {
        "module_key": MODULE,
        "module_version": VERSION,
        "module_type": "function",
        "tool_key": TOOL_KEY,
        "tool_versions": ["1"],
        "operating_systems": [HOST_OS],
        "functions": {
            fn(name): [
                {
                    "entrypoint": "behave.py",
                    "run_command": command,
                    "function_schema": {"inputs": {"part": _PART, **inputs}, "outputs": outputs},
                }
            ]
            for name, (inputs, outputs) in FUNCTIONS.items()
        },
    }


def install(modules_path: Path, directory: str = "behaviours", **kw: Any) -> Path:
    """Install the module under `modules_path`; returns its directory."""
    target = modules_path / directory
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOOL, target / "behave.py")
    shutil.copy(TOOL.with_name("hostile.py"), target / "hostile.py")
    (target / "module_manifest.json").write_text(json.dumps(manifest(**kw), indent=2))
    return target
