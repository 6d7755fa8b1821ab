"""The agent's HTTP listener: `/healthz`, `/readyz` and `/metrics`, on loopback unless told.

`/healthz` is liveness: it answers while the event loop runs. `/readyz` is 200 while the agent
is registered and the registry has answered within `READY_WINDOW` seconds (an idle agent's
last contact may be old, so a stale one is refreshed with a readiness request first), 503
with the reason otherwise. `/metrics` is the Prometheus text format (metrics.py). The run
records are served under `/runs` (agent/runs/api.py) and as pages under `/dashboard`
(agent/runs/dashboard.py).

Every request passes the `Gate` first: a Host header the listener does not answer for is a 421
(DNS rebinding: a page whose name now resolves here sends its own name), then everything but
`/healthz`, `/readyz` (and `/metrics` with `http_metrics_open`) needs `Authorization: Bearer
<token>` (agent/httpaccess.py), else a 401. A person opens the dashboard from its link
(`/dashboard?token=...`, printed by `istari-agent dashboard-url`): that answers with a cookie
holding a MAC of the token and a redirect to the same page without it; the cookie then
authenticates GET and HEAD (never DELETE) for pages and `/runs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from agent.addresses import parse_address
from agent.httpaccess import Access, HostRule, hostport
from agent.metrics import Metrics
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.runs import api as runs_api
from agent.runs import dashboard
from agent.runs.store import RunRecords

log = structlog.get_logger(__name__)

READY_WINDOW = 30.0  # seconds since the registry last answered, for /readyz
PROBE_TIMEOUT = 2.0
COOKIE = "istari_agent"  # the dashboard's; its value is a MAC of the token, never the token
_COOKIE_MAC = b"istari-agent dashboard cookie"
_SAFE = frozenset({"GET", "HEAD"})  # what the cookie may do: a browser sends it unasked


class HealthServer:
    """Serves health and metrics until cancelled."""

    def __init__(
        self,
        address: str,
        metrics: Metrics,
        client: RegistryClient,
        records: RunRecords | None = None,
        *,
        access: Access,
    ) -> None:
        self.host, self.port = parse_address(address)
        self.metrics = metrics
        self.client = client
        self.gate = Gate(access)
        app = web.Application(middlewares=[self.gate.check])
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
            # No await since start(): no request has been handled before the hosts are set.
            ports = [a[1] for a in runner.addresses]  # the configured name answers too
            bound = [(a[0], a[1]) for a in runner.addresses] + [(self.host, p) for p in ports]
            self.gate.hosts.bound(bound)
            bound = runner.addresses[0]
            log.info("http.listening", url=f"http://{hostport(bound[0], bound[1])}")
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


class Gate:
    """The listener's checks before any handler: the Host header, then the token."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.hosts = HostRule(access.allowed_hosts)
        self.open = {"/healthz", "/readyz"} | ({"/metrics"} if access.metrics_open else set())
        self._token = access.token.encode()
        self._cookie = hmac.new(self._token, _COOKIE_MAC, hashlib.sha256).hexdigest().encode()

    @web.middleware
    async def check(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.hosts.allows(request.headers.get(hdrs.HOST)):
            detail = "this listener does not answer for that Host; name it in http_allowed_hosts"
            return web.json_response({"detail": detail}, status=421)
        if _is_page(request.path) and "token" in request.query:
            return self._login(request)
        if request.path in self.open or self._authorized(request):
            return await handler(request)
        return self._unauthorized(request)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return _same(given.strip(), self._token)
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and request.method in _SAFE and _same(cookie, self._cookie)

    def _login(self, request: web.Request) -> web.Response:
        """The dashboard's link: its token becomes a cookie, and leaves the address bar."""
        if not _same(request.query.getone("token"), self._token):
            return self._unauthorized(request)
        kept = [(k, v) for k, v in request.query.items() if k != "token"]
        headers = {"Location": str(request.rel_url.with_query(kept)), "Cache-Control": "no-store"}
        answer = web.Response(status=303, headers={**headers, "Referrer-Policy": "no-referrer"})
        answer.set_cookie(COOKIE, self._cookie.decode(), httponly=True, samesite="Strict", path="/")
        return answer

    def _unauthorized(self, request: web.Request) -> web.Response:
        where = self.access.token_path
        challenge = {"WWW-Authenticate": 'Bearer realm="istari-agent"'}
        if _is_page(request.path):
            detail = (
                f"Open the dashboard from its link: run `istari-agent dashboard-url` as a user "
                f"who can read the agent's token file ({where}) and open the address it prints."
            )
            return dashboard.problem(401, "Open the dashboard from its link", detail, challenge)
        detail = (
            "this needs the agent's HTTP token: send 'Authorization: Bearer <token>', the "
            f"token being the content of {where}"
        )
        return web.json_response({"detail": detail}, status=401, headers=challenge)


def _is_page(path: str) -> bool:
    return path == "/dashboard" or path.startswith("/dashboard/")


def _same(given: str, expected: bytes) -> bool:
    """A constant-time comparison (headers may hold any bytes: aiohttp keeps them escaped)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)
