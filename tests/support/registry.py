"""The local registry in tests: run as a real child process, and driven over HTTP.

`start_registry_process` runs `istari-agent registry serve` on a free port; `agent_with_module`
and `submit_jobs` give any registry an agent that serves the test module and jobs for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.registry.client import RegistryClient
from agent.registry.models import Job, ModuleVersionRef, NewAgent
from agent.submit import Submission, submit

_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class RegistryProcess:
    """A `istari-agent registry serve` child process."""

    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[str]


def start_registry_process(data_dir: Path, token: str, *extra: str) -> RegistryProcess:
    """Start the registry CLI on a free port and wait for its 'listening on' line."""
    env = {**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": token}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "agent", "registry", "serve",
            "--port", "0", "--data-dir", str(data_dir), *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server prints its one line (or exits)
    match = _LISTENING.search(line)
    if match is None:
        proc.kill()
        proc.stdout.close()
        pytest.fail(f"registry did not start: {line!r}, exit code {proc.wait()}")
    return RegistryProcess(match.group(1), token, data_dir, proc)


def stop_registry_process(reg: RegistryProcess) -> None:
    """Stop a registry child process and wait for it."""
    reg.process.terminate()
    try:
        reg.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reg.process.kill()
        reg.process.wait()
    if reg.process.stdout is not None:
        reg.process.stdout.close()


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
