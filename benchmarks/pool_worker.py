"""A benchmark worker process: N agents served side by side in one event loop until SIGTERM.

Run: python -m benchmarks.pool_worker --agents 25 --state-root DIR, configured like
`istari-agent run` by the `ISTARI_DIGITAL_AGENT_*` environment; agent n keeps its identity
in DIR/agent-n. Several of these make a large pool without one event loop per agent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from agent import logs
from agent.config import Settings, load_settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.service import serve
from agent.stopping import Stop


def agent_settings(state_root: Path, n: int) -> Settings:
    """The n-th agent's settings: the environment's, with its own state directory."""
    return load_settings(None, {"state_path": state_root / f"agent-{n}"}, os.environ)


async def serve_all(agents: int, state_root: Path) -> None:
    """Serve `agents` agents until SIGTERM/SIGINT, which drains them all."""
    stop = Stop()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.request, sig.name)
    env = tool_environment(os.environ)
    async with asyncio.TaskGroup() as tg:
        for n in range(agents):
            tg.create_task(serve(agent_settings(state_root, n), env, Mode.SERVE, stop=stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--state-root", type=Path, required=True)
    args = parser.parse_args()
    logs.configure(agent_settings(args.state_root, 0).log_level, json=True)
    asyncio.run(serve_all(args.agents, args.state_root))


if __name__ == "__main__":
    main()
