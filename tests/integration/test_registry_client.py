"""The registry client against real servers: streaming transfers and the error tree."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.localregistry.server import RunningRegistry
from agent.registry.client import RegistryClient
from agent.registry.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    RegistryRejected,
    RegistryUnavailable,
    Unauthorized,
)
from agent.registry.transfer import download_revision, upload_revision


async def test_large_file_round_trips_through_streaming_transfer(
    client: RegistryClient, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    with src.open("wb") as f:
        for _ in range(24):  # 24 MiB: many chunks on both sides
            f.write(os.urandom(1024 * 1024))
    model = await client.create_model(await upload_revision(client, src))
    assert model.file.current.size == src.stat().st_size
    dest = tmp_path / "back.bin"
    assert await download_revision(client, model.file.current, dest) == src.stat().st_size
    assert dest.read_bytes() == src.read_bytes()


async def test_uploading_known_bytes_again_skips_the_put(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("same")
    rev = await upload_revision(client, src)
    await client.create_model(rev)  # a PUT is only a candidate until a revision verifies it
    assert await client.upload_url(rev.content_token.sha) is None  # 409 -> already stored


async def test_corrupted_blob_is_refused_on_download_and_not_kept(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("original content")
    model = await client.create_model(await upload_revision(client, src))
    blob = local_registry.registry.blobs.path(model.file.current.content_token.sha)
    blob.write_text("tampered content")  # bit rot, or someone editing the store by hand
    dest = tmp_path / "out.txt"
    with pytest.raises(IntegrityError):
        await download_revision(client, model.file.current, dest)
    assert not dest.exists()


async def test_rejections_map_to_the_error_tree(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    with pytest.raises(NotFound) as not_found:
        await client.get_job("00000000-0000-4000-8000-000000000000")
    assert not_found.value.status == 404
    assert not not_found.value.retryable
    async with RegistryClient(local_registry.url, "wrong-token") as bad:
        with pytest.raises(Unauthorized) as unauthorized:
            await bad.get_job("00000000-0000-4000-8000-000000000000")
    assert "wrong-token" not in str(unauthorized.value)
    with pytest.raises(RegistryRejected):
        await client.available_jobs("not-a-uuid")


@pytest.fixture
async def broken_server() -> AsyncIterator[str]:
    """A server that answers 500 on one path and drops the connection on another."""

    async def five_hundred(request: web.Request) -> web.Response:
        return web.json_response({"detail": "database on fire"}, status=500)

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()  # mid-request, no response at all
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/v2/jobs/{id}", five_hundred)
    app.router.add_put("/api/v2/jobs/{id}/status", drop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_server_errors_and_dropped_connections_are_retryable(broken_server: str) -> None:
    from agent.protocol.states import JobStatus

    async with RegistryClient(broken_server, "t") as c:
        with pytest.raises(RegistryUnavailable) as five:
            await c.get_job("j")
        assert five.value.retryable
        assert "database on fire" in str(five.value)
        with pytest.raises(RegistryUnavailable) as dropped:
            await c.update_job_status("j", JobStatus.CLAIMED, "a")
        assert dropped.value.retryable


async def test_unreachable_registry_is_retryable() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with RegistryClient(f"http://127.0.0.1:{port}", "t") as c:
        with pytest.raises(RegistryUnavailable) as err:
            await c.readiness()
    assert err.value.retryable


async def test_claim_conflict_is_a_conflict(client: RegistryClient, tmp_path: Path) -> None:
    from agent.protocol.states import JobStatus
    from tests.support.registry import agent_with_module, submit_jobs

    (job,) = await submit_jobs(client, tmp_path, 1)
    a, b = await agent_with_module(client), await agent_with_module(client)
    await client.update_job_status(job.id, JobStatus.CLAIMED, a)
    with pytest.raises(Conflict):
        await client.update_job_status(job.id, JobStatus.CLAIMED, b)
