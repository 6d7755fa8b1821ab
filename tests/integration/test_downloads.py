"""Input downloads that survive faults, against the local registry behind the fault proxy:
a cut resumed with Range, a storage that ignores Range, a 206 from the wrong place, an
expired URL, a full disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.protocol.content import new_salt
from agent.registry import download
from agent.registry.client import RegistryClient
from agent.registry.errors import DiskFull
from agent.registry.models import FileRevision
from agent.registry.transfer import download_revision, upload_revision
from tests.support.disks import small_tmpfs
from tests.support.faultproxy import Fault, FaultProxy

MiB = 1024 * 1024
SIZE = 6 * MiB


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[RunningRegistry, FaultProxy]]:
    """A registry reached (API and presigned blob URLs) only through the proxy."""
    async with FaultProxy() as p:
        settings = RegistrySettings(data_dir=tmp_path / "registry", public_url=p.url)
        async with running(settings) as reg:
            p.upstream = reg.url
            yield reg, p


async def _stored(client: RegistryClient, tmp_path: Path, content: bytes) -> FileRevision:
    src = tmp_path / "model.bin"
    src.write_bytes(content)
    model = await client.create_model(await upload_revision(client, src))
    return model.file.current


def _blob_requests(proxy: FaultProxy, sha: str) -> list[str | None]:
    """The Range header of each GET of the blob, in order (None: none sent)."""
    path = f"/blobs/{sha}"
    return [h.get("Range") for m, p, h in proxy.requests if m == "GET" and p == path]


async def test_a_download_cut_midway_resumes_with_range(
    proxied: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied
    content = os.urandom(SIZE)
    async with RegistryClient(proxy.url, reg.token) as client:
        rev = await _stored(client, tmp_path, content)
        sha = rev.content_token.sha
        cut = proxy.inject(Fault("GET", f"^/blobs/{sha}$", "cut_body", after_bytes=2 * MiB))
        received: list[int] = []
        dest = tmp_path / "got.bin"
        size = await download_revision(client, rev, dest, progress=received.append, retries=2)
    await proxy.wait_used(cut)
    assert size == SIZE and dest.read_bytes() == content
    assert _blob_requests(proxy, sha) == [None, f"bytes={2 * MiB}-"]
    assert proxy.relayed[f"GET /blobs/{sha}"] == SIZE  # the first 2 MiB were not sent again
    assert sum(received) == SIZE  # progress: increments, each byte once
    assert all(n > 0 for n in received)


async def test_a_storage_that_ignores_range_is_followed_from_zero(
    proxied: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied
    content = os.urandom(SIZE)
    async with RegistryClient(proxy.url, reg.token) as client:
        rev = await _stored(client, tmp_path, content)
        sha = rev.content_token.sha
        proxy.inject(Fault("GET", f"^/blobs/{sha}$", "cut_body", after_bytes=2 * MiB))
        proxy.inject(Fault("GET", f"^/blobs/{sha}$", "ignore_range"))
        dest = tmp_path / "got.bin"
        await download_revision(client, rev, dest, retries=2)
    assert _blob_requests(proxy, sha) == [None, f"bytes={2 * MiB}-"]  # asked, not honoured
    assert proxy.relayed[f"GET /blobs/{sha}"] == 2 * MiB + SIZE
    assert dest.stat().st_size == SIZE  # truncated, not the first 2 MiB plus the whole
    assert dest.read_bytes() == content


async def test_a_partial_file_left_by_an_earlier_run_is_resumed_or_started_over(
    proxied: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied
    content = os.urandom(SIZE)
    async with RegistryClient(proxy.url, reg.token) as client:
        rev = await _stored(client, tmp_path, content)
        sha = rev.content_token.sha
        dest = tmp_path / "partial.bin"
        dest.write_bytes(content[: 2 * MiB])  # what a killed agent left, unhashed here
        await download_revision(client, rev, dest, resume=True)
        assert dest.read_bytes() == content
        assert _blob_requests(proxy, sha) == [f"bytes={2 * MiB}-"]
        assert proxy.relayed[f"GET /blobs/{sha}"] == SIZE - 2 * MiB
        proxy.clear()
        dest.write_bytes(b"x" * MiB)  # a partial file that is not the start of the content
        await download_revision(client, rev, dest, resume=True)
    assert dest.read_bytes() == content  # did not match: downloaded again from zero, once
    assert _blob_requests(proxy, sha) == [f"bytes={MiB}-", None]


async def test_a_206_from_another_place_than_asked_starts_again(tmp_path: Path) -> None:
    content = os.urandom(3 * MiB)
    salt = new_salt()
    sha = hashlib.sha384(content + salt.encode()).hexdigest()

    async def blob(request: web.Request) -> web.Response:
        if "Range" in request.headers:  # always from byte 0, whatever was asked
            headers = {"Content-Range": f"bytes 0-{len(content) - 1}/{len(content)}"}
            return web.Response(body=content, status=206, headers=headers)
        return web.Response(body=content)

    app = web.Application()
    app.router.add_get("/blob", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with FaultProxy(f"http://127.0.0.1:{port}") as proxy:
            proxy.inject(Fault("GET", "^/blob$", "cut_body", after_bytes=MiB))
            async with RegistryClient(proxy.url, "t") as client:

                async def url() -> str:
                    return f"{proxy.url}/blob"

                dest = tmp_path / "got.bin"
                await download.fetch(client.blob_source(url), dest, sha, salt, retries=3)
    finally:
        await runner.cleanup()
    assert [h.get("Range") for _, _, h in proxy.requests] == [None, f"bytes={MiB}-", None]
    assert dest.read_bytes() == content


async def test_an_expired_url_is_asked_for_again(
    proxied: tuple[RunningRegistry, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied
    content = os.urandom(MiB)
    async with RegistryClient(proxy.url, reg.token) as client:
        rev = await _stored(client, tmp_path, content)
        sha = rev.content_token.sha
        proxy.inject(Fault("GET", f"^/blobs/{sha}$", "status", status=403))
        dest = tmp_path / "got.bin"
        await download_revision(client, rev, dest, retries=1, budget=10)
    assert dest.read_bytes() == content
    assert proxy.hits("GET", f"^/api/v2/tokens/{sha}/download-url$") == 2
    assert proxy.hits("GET", f"^/blobs/{sha}$") == 2


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (this suite runs as root; without it the test cannot be made)."""
    with small_tmpfs(tmp_path / "small", "2m") as mount:
        yield mount


async def test_a_full_disk_removes_the_partial_file_and_says_what_was_needed(
    proxied: tuple[RunningRegistry, FaultProxy], tmp_path: Path, small_disk: Path
) -> None:
    reg, proxy = proxied
    async with RegistryClient(proxy.url, reg.token) as client:
        rev = await _stored(client, tmp_path, os.urandom(4 * MiB))
        dest = small_disk / "model.bin"
        with pytest.raises(DiskFull) as caught:
            await download_revision(client, rev, dest, retries=3)
    assert caught.value.needed == 4 * MiB
    assert caught.value.free == 2 * MiB  # the partial file is gone: all of it free again
    assert not dest.exists()
    assert proxy.hits("GET", "^/blobs/") == 1  # not retried: it would not fit either
