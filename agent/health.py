"""The agent's HTTP listener: `/healthz`, `/readyz` and `/metrics`, on loopback unless told.

`/healthz` is liveness: it answers while the event loop runs. `/readyz` is 200 while the agent
is registered and the registry has answered within `READY_WINDOW` seconds (an idle agent's
last contact may be old, so a stale one is refreshed with a readiness request first), 503
with the reason otherwise. `/metrics` is the Prometheus text format (metrics.py). The run
records are served under `/runs` (agent/runs/api.py) and as pages under `/dashboard`
(agent/runs/dashboard.py).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from agent.addresses import parse_address
from agent.metrics import Metrics
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.runs import api as runs_api
from agent.runs import dashboard
from agent.runs.records import RunRecords

log = structlog.get_logger(__name__)

READY_WINDOW = 30.0  # seconds since the registry last answered, for /readyz
PROBE_TIMEOUT = 2.0


class HealthServer:
    """Serves health and metrics until cancelled."""

    def __init__(
        self,
        address: str,
        metrics: Metrics,
        client: RegistryClient,
        records: RunRecords | None = None,
    ) -> None:
        self.host, self.port = parse_address(address)
        self.metrics = metrics
        self.client = client
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if records is not None:
            runs_api.add_routes(app, records)
            dashboard.add_routes(app, records)
        self.app = app  # its routes are listed by the tests that hold them to the docs

    async def run(self) -> None:
        """Listen, log where, and serve until cancelled."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError as e:  # health is optional: the jobs must go on without it
                log.error("http.unavailable", address=f"{self.host}:{self.port}", error=str(e))  # noqa: TRY400
                return
            bound = runner.addresses[0]
            log.info("http.listening", url=f"http://{_hostport(bound[0], bound[1])}")
            await asyncio.Event().wait()  # until cancelled
        finally:
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        if self.client.contact_age() > READY_WINDOW:
            with contextlib.suppress(RegistryError, TimeoutError):
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await self.client.readiness()
        age = self.client.contact_age()
        if age <= READY_WINDOW:
            return web.json_response({"status": "ready", "registry_answered_s_ago": round(age, 1)})
        why = "the registry has not answered" + (f" for {age:.0f} s" if age != float("inf") else "")
        return web.json_response({"status": "not ready", "reason": why}, status=503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = self.metrics.exposition()  # in the loop's thread: gauges read the journal
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
