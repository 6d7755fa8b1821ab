"""`istari-agent run` as a child process whose JSON log lines (stderr) can be waited for."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

DEADLINE = 30.0


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
async def running_agent(env: dict[str, str]) -> AsyncIterator[AgentProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield AgentProcess(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
