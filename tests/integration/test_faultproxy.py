"""The fault-injection proxy: faithful streaming relay, and each fault doing what it says."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.protocol.content import digest_file
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryUnavailable
from agent.registry.transfer import download_revision, upload_revision
from tests.support.faultproxy import Fault, FaultProxy

MiB = 1024 * 1024


@dataclass
class Upstream:
    """A small real server behind the proxy, recording what reached it."""

    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)
    counter: int = 0
    arrivals: list[float] = field(default_factory=list)
    body_started: asyncio.Event = field(default_factory=asyncio.Event)
    client_reading: asyncio.Event = field(default_factory=asyncio.Event)
    stream_body: bytes = b""


def _app(up: Upstream) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        up.seen.append((request.method, request.path))
        up.arrivals.append(time.monotonic())
        return await handler(request)

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        doc = {
            "method": request.method,
            "path_qs": request.path_qs,
            "host": request.host,
            "x_test": request.headers.getall("X-Test", []),
            "connection_named": request.headers.get("X-Hop"),
            "body": body.decode(),
        }
        return web.json_response(doc, status=201, headers={"X-From": "upstream"})

    async def sink(request: web.Request) -> web.Response:
        hasher, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            up.body_started.set()
            hasher.update(chunk)
            size += len(chunk)
        doc = {"sha256": hasher.hexdigest(), "size": size, "length": request.content_length}
        return web.json_response(doc)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(up.stream_body[:MiB])
        await up.client_reading.wait()  # only a streaming proxy lets the client get here
        await response.write(up.stream_body[MiB:])
        await response.write_eof()
        return response

    async def count(request: web.Request) -> web.Response:
        up.counter += 1
        return web.json_response({"counter": up.counter})

    app = web.Application(middlewares=[record])
    app.router.add_route("*", "/echo", echo)
    app.router.add_put("/sink", sink)
    app.router.add_get("/stream", stream)
    app.router.add_post("/counter", count)
    return app


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    runner = web.AppRunner(_app(up), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    up.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield up
    up.client_reading.set()  # a test that failed midway must not leave /stream waiting
    await runner.cleanup()


@pytest.fixture
async def proxy(upstream: Upstream) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream.url) as p:
        yield p


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


# -- pass-through ---------------------------------------------------------------------------


async def test_relays_method_path_query_headers_status_and_body(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    headers = [("X-Test", "a"), ("X-Test", "b"), ("Connection", "keep-alive, X-Hop")]
    headers.append(("X-Hop", "for this connection only"))
    async with http.patch(
        f"{proxy.url}/echo?q=a%20b&q=2", data=b"payload", headers=headers
    ) as resp:
        assert resp.status == 201
        assert resp.headers["X-From"] == "upstream"
        doc = await resp.json()
    assert doc["method"] == "PATCH"
    assert doc["path_qs"] == "/echo?q=a%20b&q=2"
    assert doc["host"] == upstream.url.removeprefix("http://")
    assert doc["x_test"] == ["a", "b"]
    assert doc["connection_named"] is None
    assert doc["body"] == "payload"


async def test_large_bodies_round_trip_intact(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    data = os.urandom(6 * MiB)
    async with http.put(f"{proxy.url}/sink", data=io.BytesIO(data)) as resp:
        doc = await resp.json()
    assert doc == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "length": len(data),
    }
    upstream.stream_body = data
    upstream.client_reading.set()
    async with http.get(f"{proxy.url}/stream") as resp:
        got = await resp.read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_request_body_is_streamed_not_buffered(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    data = os.urandom(4 * MiB)

    async def body() -> AsyncIterator[bytes]:
        yield data[:MiB]
        # A proxy that waited for the whole body would never let upstream see this first part.
        await upstream.body_started.wait()
        yield data[MiB:]

    async with asyncio.timeout(10), http.put(f"{proxy.url}/sink", data=body()) as resp:
        doc = await resp.json()
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["length"] is None  # sent chunked, relayed chunked


async def test_response_body_is_streamed_not_buffered(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    upstream.stream_body = os.urandom(4 * MiB)
    async with asyncio.timeout(10), http.get(f"{proxy.url}/stream") as resp:
        first = await resp.content.readexactly(MiB)
        upstream.client_reading.set()
        rest = await resp.read()
    assert first + rest == upstream.stream_body


async def test_unset_or_unreachable_upstream_answers_502(http: aiohttp.ClientSession) -> None:
    async with FaultProxy() as p, http.get(f"{p.url}/echo") as resp:
        assert resp.status == 502


# -- faults ---------------------------------------------------------------------------------


async def test_status_fault_answers_exactly_times_then_passes_through(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    fault = proxy.inject(Fault("POST", r"^/echo$", "status", times=2, status=503))
    async with http.get(f"{proxy.url}/echo") as resp:  # other method: not affected
        assert resp.status == 201
    statuses = []
    for _ in range(3):
        async with http.post(f"{proxy.url}/echo", data=b"x" * 100_000) as resp:
            statuses.append(resp.status)
            if resp.status == 503:
                assert await resp.json() == {"detail": "injected fault"}
    assert statuses == [503, 503, 201]
    assert upstream.seen == [("GET", "/echo"), ("POST", "/echo")]
    await proxy.wait_used(fault, timeout=1)


async def test_drop_request_cuts_mid_upload_and_forwards_nothing(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    fault = proxy.inject(Fault("PUT", "/sink", "drop_request", after_bytes=MiB))
    data = os.urandom(4 * MiB)

    async def body() -> AsyncIterator[bytes]:
        yield data[:MiB]
        # Only a proxy that cuts once `after_bytes` arrived lets this go on.
        await proxy.wait_used(fault)
        yield data[MiB:]

    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.put(f"{proxy.url}/sink", data=body()) as resp:
            await resp.read()
    assert upstream.seen == []
    async with http.put(
        f"{proxy.url}/sink", data=io.BytesIO(data)
    ) as resp:  # used up: passes through
        assert (await resp.json())["sha256"] == hashlib.sha256(data).hexdigest()


async def test_aiohttp_resends_a_dropped_idempotent_request_once(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    # aiohttp retries GET/PUT/DELETE... once on a dropped connection when the body can be
    # replayed, so a drop meant to reach such a caller needs times=2.
    once = proxy.inject(Fault("PUT", "/sink", "drop_request"))
    async with http.put(f"{proxy.url}/sink", data=b"abc") as resp:
        assert resp.status == 200
    await proxy.wait_used(once, timeout=1)
    assert proxy.hits("PUT", "/sink") == 2
    proxy.inject(Fault("PUT", "/sink", "drop_request", times=2))
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.put(f"{proxy.url}/sink", data=b"abc") as resp:
            await resp.read()
    assert upstream.seen == [("PUT", "/sink")]


async def test_drop_response_cuts_after_the_upstream_side_effect(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    fault = proxy.inject(Fault("*", "^/counter$", "drop_response"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(f"{proxy.url}/counter") as resp:
            await resp.read()
    assert upstream.counter == 1
    await proxy.wait_used(fault, timeout=1)
    async with http.post(f"{proxy.url}/counter") as resp:
        assert await resp.json() == {"counter": 2}


async def test_delay_holds_the_request_before_forwarding(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    fault = proxy.inject(Fault("POST", "/counter", "delay", delay_s=0.3))
    start = time.monotonic()
    async with http.post(f"{proxy.url}/counter") as resp:
        assert await resp.json() == {"counter": 1}
    await proxy.wait_used(fault, timeout=1)
    assert upstream.arrivals[0] - start >= 0.29


async def test_wait_used_returns_once_the_fault_is_carried_out(
    upstream: Upstream, proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    fault = proxy.inject(Fault("POST", "/counter", "drop_response", times=2))
    with pytest.raises(TimeoutError):
        await proxy.wait_used(fault, timeout=0.1)  # nothing has matched yet

    async def post() -> None:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with http.post(f"{proxy.url}/counter") as resp:
                await resp.read()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(post())
        tg.create_task(post())
        await proxy.wait_used(fault)
        assert upstream.counter == 2  # "used" means carried out, side effect included
    with pytest.raises(ValueError, match="not armed"):
        await proxy.wait_used(Fault("*", "", "delay"))
    with pytest.raises(ValueError, match="times must be"):
        Fault("*", "", "status", times=0)


async def test_hits_counts_requests_by_method_and_path_and_clear_resets(
    proxy: FaultProxy, http: aiohttp.ClientSession
) -> None:
    proxy.inject(Fault("GET", "/echo", "status", times=5))
    for method, path in [("GET", "/echo"), ("GET", "/echo?x=1"), ("POST", "/counter")]:
        async with http.request(method, f"{proxy.url}{path}") as resp:
            await resp.read()
    assert proxy.hits("GET", "^/echo$") == 2
    assert proxy.hits("post", "counter") == 1
    assert proxy.hits("*", "") == 3
    assert proxy.hits("PUT", "") == 0
    proxy.clear()
    assert proxy.hits("*", "") == 0
    async with http.get(f"{proxy.url}/echo") as resp:
        assert resp.status == 201  # the fault was disarmed


# -- the local registry behind the proxy ----------------------------------------------------


@pytest.fixture
async def proxied_registry(tmp_path: Path) -> AsyncIterator[tuple[RunningRegistry, FaultProxy]]:
    """A registry whose presigned blob URLs point at the proxy in front of it."""
    async with FaultProxy() as p:
        settings = RegistrySettings(data_dir=tmp_path / "registry", public_url=p.url)
        async with running(settings) as reg:
            p.upstream = reg.url
            yield reg, p


async def test_upload_cut_midway_stores_nothing_and_a_retry_succeeds(
    proxied_registry: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied_registry
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2 * MiB))
    digest = digest_file(src)
    # A file is streamed (counted for progress), so aiohttp cannot resend it by itself: one cut.
    cut = Fault("PUT", f"^/blobs/{digest.sha}$", "drop_request", after_bytes=256 * 1024)
    proxy.inject(cut)
    async with RegistryClient(proxy.url, reg.token) as client:
        url = await client.upload_url(digest.sha)
        assert url is not None
        assert url.url.startswith(f"{proxy.url}/blobs/")  # public_url names the proxy
        with pytest.raises(RegistryUnavailable):
            await client.put_blob(url.url, src)
        await proxy.wait_used(cut)
        assert not reg.registry.blobs.exists(digest.sha)
        assert list((reg.registry.blobs.root / "tmp").iterdir()) == []
        await client.put_blob(url.url, src)  # the fault is used up; the same URL works
        assert reg.registry.blobs.uploaded(digest.sha)  # a candidate until a revision names it
        model = await client.create_model(await upload_revision(client, src))
        dest = tmp_path / "back.bin"
        await download_revision(client, model.file.current, dest)
    assert dest.read_bytes() == src.read_bytes()
    assert proxy.hits("PUT", f"^/blobs/{digest.sha}$") == 2
    assert proxy.hits("GET", "^/blobs/") == 1
