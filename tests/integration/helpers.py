"""Helpers for driving the local registry over HTTP in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.registry.client import RegistryClient
from agent.registry.models import Job, ModuleVersionRef, NewAgent
from agent.submit import Submission, submit

MODULE = "@test:tools"
FUNCTION = "@test:echo"

MANIFEST: dict[str, Any] = {
    "module_key": MODULE,
    "module_version": "1.0.0",
    "module_type": "function",
    "tool_versions": ["1"],
    "operating_systems": ["Ubuntu 22.04"],
    "functions": {
        FUNCTION: [
            {
                "entrypoint": "echo.py",
                "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                "function_schema": {
                    "inputs": {
                        "part": {"type": "user_model", "validation_types": ["@extension:txt"]}
                    },
                    "outputs": [{"name": "out", "type": "file", "required": True}],
                },
            }
        ]
    },
}


async def agent_with_module(client: RegistryClient, host_os: str = "Ubuntu 22.04") -> str:
    """Register an agent that reports the test module; returns its id."""
    agent = await client.register_agent(NewAgent(agent_version="0.1.0", host_os=host_os))
    await client.set_agent_modules(
        agent.id, [ModuleVersionRef(module_name=MODULE, module_version="1.0.0")]
    )
    return agent.id


async def submit_jobs(client: RegistryClient, tmp_path: Path, count: int, **kw: Any) -> list[Job]:
    """Publish the test module (idempotent) and submit `count` jobs on one model."""
    await client.publish_module(MANIFEST)
    model_file = tmp_path / "model.txt"
    model_file.write_text("hello")
    return [
        await submit(client, Submission(model_file, FUNCTION, {"n": i}, **kw)) for i in range(count)
    ]
