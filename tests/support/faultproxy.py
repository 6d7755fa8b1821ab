"""A streaming HTTP reverse proxy for tests that injects faults (errors, drops, delays)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

Action = Literal["status", "drop_request", "drop_response", "delay", "cut_body", "ignore_range"]

_CHUNK = 64 * 1024
# RFC 9110 §7.6.1: these describe one connection, not the message, so a proxy must not relay
# them; Host names the proxy and is rebuilt from the upstream URL.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# Headers aiohttp's client would add by itself; the proxy sends only what the client sent.
_NO_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


@dataclass
class Fault:
    """What to do to the next `times` requests whose method and path match.

    `method` is an HTTP method or "*"; `path` is a regex searched in the request path.
    status: answer `status` with `{"detail": "injected fault"}`, forwarding nothing.
    drop_request: read `after_bytes` of the body, then cut the connection; nothing forwarded.
    drop_response: forward (the upstream side effect happens), then cut the connection.
    delay: wait `delay_s`, then forward.
    cut_body: forward, relay the answer's headers and `after_bytes` of its body, then cut the
    connection (a download cut mid-body).
    ignore_range: forward without the Range header (a storage that ignores Range).
    """

    method: str
    path: str
    action: Action
    times: int = 1
    status: int = 500
    after_bytes: int = 0
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.times < 1 or self.after_bytes < 0 or self.delay_s < 0:
            msg = f"{self}: times must be >= 1, after_bytes and delay_s >= 0"
            raise ValueError(msg)
        re.compile(self.path)  # a bad regex fails here, not inside a request handler


@dataclass(eq=False)
class _Armed:
    """A fault's bookkeeping: matches left, and an event set once every match is carried out."""

    fault: Fault
    left: int
    done: int = 0
    used: asyncio.Event = field(default_factory=asyncio.Event)

    def finished_one(self) -> None:
        self.done += 1
        if self.done >= self.fault.times:
            self.used.set()


def _matches(method: str, pattern: str, request_method: str, request_path: str) -> bool:
    same_method = method == "*" or method.upper() == request_method
    return same_method and re.search(pattern, request_path) is not None


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The headers a proxy relays: all but hop-by-hop ones and those named in Connection."""
    named = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    dropped = _HOP_BY_HOP | named
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)


def _cut(request: web.BaseRequest) -> web.StreamResponse:
    """Close the client's connection without an answer; the response returned is never sent."""
    if request.transport is not None:
        request.transport.abort()
    return web.StreamResponse()


class FaultProxy:
    """`async with FaultProxy(upstream) as proxy:` relays 127.0.0.1:`proxy.url` to upstream.

    `upstream` may be assigned after start, for an upstream (such as a registry with
    `public_url`) that must know the proxy's URL before it starts; until then requests get 502.
    """

    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream
        self.url = ""
        self._faults: list[_Armed] = []
        self._seen: list[tuple[str, str]] = []
        # Each request's method, path and headers, in arrival order (what a client sent).
        self.requests: list[tuple[str, str, CIMultiDict[str]]] = []
        # Bytes of response bodies relayed to clients, by "METHOD path".
        self.relayed: dict[str, int] = {}
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # relay bytes as sent, Content-Encoding and all
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        self._runner = web.ServerRunner(
            web.Server(self._handle, access_log=None), handle_signals=False, shutdown_timeout=5
        )
        try:
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        except BaseException:
            await self.__aexit__(None, None, None)  # the session must not leak
            raise
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Stop serving first so no handler is left using the session being closed.
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- faults and counts --------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Arm `fault` (after those already armed, which match first); returns it."""
        self._faults.append(_Armed(fault, left=fault.times))
        return fault

    def clear(self) -> None:
        """Disarm every fault and forget the requests seen."""
        self._faults.clear()
        self._seen.clear()
        self.requests.clear()
        self.relayed.clear()

    def hits(self, method: str, path: str) -> int:
        """How many requests seen so far match `method` ("*" = any) and the `path` regex."""
        return sum(_matches(method, path, m, p) for m, p in self._seen)

    # A bounded wait is the point here; every caller would otherwise wrap it in a timeout.
    async def wait_used(self, fault: Fault, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until `fault` has been carried out `times` times (TimeoutError otherwise)."""
        armed = next((a for a in self._faults if a.fault is fault), None)
        if armed is None:
            msg = f"{fault} is not armed on this proxy"
            raise ValueError(msg)
        async with asyncio.timeout(timeout):
            await armed.used.wait()

    def _take(self, method: str, path: str) -> _Armed | None:
        # No await between the check and the decrement, so concurrent requests cannot both
        # take the last use of a fault.
        for armed in self._faults:
            if armed.left > 0 and _matches(armed.fault.method, armed.fault.path, method, path):
                armed.left -= 1
                return armed
        return None

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self._seen.append((request.method, request.path))
        self.requests.append((request.method, request.path, CIMultiDict(request.headers)))
        armed = self._take(request.method, request.path)
        if armed is None:
            return await self._forward(request)
        try:
            return await self._apply(armed.fault, request)
        finally:
            # Counted once carried out, so wait_used() returning means the effect happened.
            armed.finished_one()

    async def _apply(self, fault: Fault, request: web.BaseRequest) -> web.StreamResponse:
        if fault.action == "status":
            await _discard(request.content, limit=None)
            return web.json_response({"detail": "injected fault"}, status=fault.status)
        if fault.action == "drop_request":
            await _discard(request.content, limit=fault.after_bytes)
            return _cut(request)
        if fault.action == "drop_response":
            # Cut whatever upstream did: the point is that the client never hears of it.
            with suppress(aiohttp.ClientError, OSError):
                async with self._send(request) as upstream:
                    await _discard(upstream.content, limit=None)
            return _cut(request)
        if fault.action == "cut_body":
            return await self._forward(request, cut_after=fault.after_bytes)
        if fault.action == "ignore_range":
            return await self._forward(request, drop_headers=frozenset({"range"}))
        await asyncio.sleep(fault.delay_s)  # the fault itself, not a wait for something
        return await self._forward(request)

    @asynccontextmanager
    async def _send(
        self, request: web.BaseRequest, drop_headers: frozenset[str] = frozenset()
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The request relayed upstream, its body streamed as it arrives."""
        if self._session is None:
            msg = "use FaultProxy as an async context manager"
            raise RuntimeError(msg)
        url = URL(self.upstream.rstrip("/") + request.raw_path, encoded=True)
        headers = _end_to_end(request.headers)
        for name in drop_headers:
            headers.popall(name, None)
        async with self._session.request(
            request.method,
            url,
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
            skip_auto_headers=_NO_AUTO_HEADERS,
        ) as upstream:
            yield upstream

    async def _forward(
        self,
        request: web.BaseRequest,
        *,
        cut_after: int | None = None,
        drop_headers: frozenset[str] = frozenset(),
    ) -> web.StreamResponse:
        response: web.StreamResponse | None = None
        try:
            async with self._send(request, drop_headers) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=_end_to_end(upstream.headers),
                )
                await response.prepare(request)
                sent = 0
                async for chunk in upstream.content.iter_chunked(_CHUNK):
                    if cut_after is not None and sent + len(chunk) >= cut_after:
                        await response.write(chunk[: cut_after - sent])
                        self._count(f"{request.method} {request.path}", cut_after - sent)
                        return _cut(request)
                    await response.write(chunk)
                    sent += len(chunk)
                    self._count(f"{request.method} {request.path}", len(chunk))
                await response.write_eof()
                return response
        except (aiohttp.ClientError, OSError) as e:
            if response is not None:  # headers already sent: only a cut tells the client
                return _cut(request)
            return web.json_response({"detail": f"proxy: upstream failed: {e!r}"}, status=502)

    def _count(self, key: str, n: int) -> None:
        self.relayed[key] = self.relayed.get(key, 0) + n


async def _discard(stream: aiohttp.StreamReader, limit: int | None) -> None:
    """Read and drop up to `limit` bytes (all, when None) of a body."""
    left = limit
    while left is None or left > 0:
        chunk = await stream.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
