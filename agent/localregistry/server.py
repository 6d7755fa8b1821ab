"""Running the local registry: bind, announce the URL, serve until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from agent.localregistry.app import RegistrySettings, build_registry, create_app
from agent.localregistry.state import Registry


@dataclass(frozen=True)
class RunningRegistry:
    """A registry that is serving: where, with which admin token, and its state."""

    url: str
    token: str
    registry: Registry


@asynccontextmanager
async def running(
    settings: RegistrySettings, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningRegistry]:
    """Serve a registry for the duration of the block (port 0 picks a free port)."""
    reg, token = build_registry(settings)
    app = create_app(reg, settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        bound = server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}"
        reg.base_url = settings.public_url or url
        yield RunningRegistry(url=url, token=token, registry=reg)
    finally:
        await runner.cleanup()


async def serve_forever(settings: RegistrySettings, host: str, port: int) -> None:
    """Serve until cancelled, printing one line with the URL once listening."""
    async with running(settings, host, port) as r:
        token_hint = (
            "token from ISTARI_LOCAL_REGISTRY_TOKEN"
            if settings.admin_token
            else f"token in {settings.data_dir / 'admin-token'}"
        )
        print(f"istari local registry listening on {r.url} ({token_hint})", flush=True)
        await asyncio.Event().wait()
