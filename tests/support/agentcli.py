"""The agent's CLI as a child process: its environment, one-shot commands, and `istari-agent
run` whose JSON log lines (stderr) can be waited for; plus a job submitted for it to run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.support.registry import RegistryProcess
from tests.tools import module

DEADLINE = 30.0


def agent_env(reg: RegistryProcess, root: Path) -> dict[str, str]:
    """The environment for an agent of `reg` with its paths under `root` (no ISTARI_* of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    return {
        **env,
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_URL": reg.url,
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN": reg.token,
        "ISTARI_DIGITAL_AGENT_MODULES_PATH": str(root / "modules"),
        "ISTARI_DIGITAL_AGENT_OUTPUT_PATH": str(root / "work"),
        "ISTARI_DIGITAL_AGENT_STATE_PATH": str(root / "state"),
        "ISTARI_DIGITAL_AGENT_HOST_OS": module.HOST_OS,
        "ISTARI_DIGITAL_AGENT_RETRY_BUDGET": "5",
    }


def agent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `istari-agent ARGS` to its end (at most 60 s), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def submit_job(reg: RegistryProcess, root: Path, behaviour: str, params: dict[str, Any]) -> str:
    """Publish the test module to `reg` and submit one job of `behaviour`; its id."""

    async def go() -> str:
        async with RegistryClient(reg.url, reg.token) as client:
            await client.publish_module(module.manifest())
            model = root / "part.txt"
            model.write_text("model")
            job = await submit(client, Submission(model, module.fn(behaviour), params))
            return job.id

    return asyncio.run(go())


class AgentProcess:
    """`istari-agent run` as a child process whose JSON log lines can be waited for."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    def events_named(self, event: str) -> list[dict[str, Any]]:
        """The lines read so far for `event`."""
        return [e for e in self.events if e.get("event") == event]

    async def wait_for(self, event: str, count: int = 1, **fields: Any) -> dict[str, Any]:
        def found() -> list[dict[str, Any]]:
            return [
                e
                for e in self.events
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            ]

        assert self.process.stderr is not None
        async with asyncio.timeout(DEADLINE):
            while len(found()) < count:
                line = await self.process.stderr.readline()
                assert line, f"the agent exited before logging {event}: {self.events[-3:]}"
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.events.append({"event": "(not JSON)", "line": line.decode()})
        return found()[count - 1]


@asynccontextmanager
async def running_agent(env: dict[str, str], *args: str) -> AsyncIterator[AgentProcess]:
    """`istari-agent run ARGS` with `env`, killed on leaving if it has not exited."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield AgentProcess(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
