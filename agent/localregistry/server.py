"""Running the local registry: bind, announce the URL, serve until cancelled."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from agent.localregistry.app import RegistrySettings, build_registry, create_app
from agent.localregistry.notify import Notifier
from agent.localregistry.state import Registry


@dataclass(frozen=True)
class RunningRegistry:
    """A registry that is serving: where, with which admin token, and its state."""

    url: str
    token: str
    registry: Registry
    notifier: Notifier | None = None


@asynccontextmanager
async def running(
    settings: RegistrySettings, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningRegistry]:
    """Serve a registry for the duration of the block (port 0 picks a free port).

    With `settings.mqtt`, a notifier publishes push notices for the block's lifetime; it is
    stopped (saying offline) before the HTTP side closes.
    """
    reg, token = build_registry(settings)
    app = create_app(reg, settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=settings.tls)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        bound = server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"{'https' if settings.tls else 'http'}://{shown}:{bound}"
        reg.base_url = settings.public_url or url
        async with _notifying(reg, settings) as notifier:
            yield RunningRegistry(url=url, token=token, registry=reg, notifier=notifier)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _notifying(reg: Registry, settings: RegistrySettings) -> AsyncIterator[Notifier | None]:
    """Publish `reg`'s events to `settings.mqtt` (if set) for the block, from an owned task."""
    if settings.mqtt is None:
        yield None
        return
    notifier = Notifier(settings.mqtt, settings.data_dir)
    failure: BaseException | None = None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(notifier.run(), name="registry-push")
        reg.listeners.append(notifier)
        try:
            yield notifier
        except (Exception, asyncio.CancelledError) as e:
            # Re-raised once the group has closed, so the block's own error leaves as it
            # was raised, not wrapped in an ExceptionGroup. The notifier never raises for
            # broker trouble; if it crashes anyway (a bug), that does leave as a group.
            failure = e
        finally:
            reg.listeners.remove(notifier)
            task.cancel()  # it says offline (bounded) before the group lets go
    if failure is not None:
        raise failure


async def serve_forever(settings: RegistrySettings, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT (or cancelled), printing one line with the URL once listening.

    A signal ends the block normally, so the push notifier says offline and the HTTP side
    closes cleanly instead of the process dying mid-request.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings, host, port) as r:
        token_hint = (
            "token from ISTARI_LOCAL_REGISTRY_TOKEN"
            if settings.admin_token
            else f"token in {settings.data_dir / 'admin-token'}"
        )
        print(f"istari local registry listening on {r.url} ({token_hint})", flush=True)
        await stop.wait()
