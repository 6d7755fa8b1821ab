"""Multipart uploads end to end over loopback: the agent's upload path against the local
registry, with faults injected between them (the fault proxy counts every part PUT)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.protocol.content import digest_file, properties_document
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryRejected
from agent.registry.models import NewRevision, Token
from agent.registry.multipart import MultipartSettings
from agent.registry.transfer import download_revision, upload_blob, upload_bytes, upload_revision
from tests.support.faultproxy import Fault, FaultProxy

KiB = 1024
SMALL = MultipartSettings(threshold=64 * KiB, chunksize=64 * KiB, pool=4, retries=3, budget=10)
PART = r"/blobs/[0-9a-f]{96}/parts/[0-9a-f]+/"


def _file(tmp_path: Path, size: int, name: str = "big.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
async def proxied(proxy: FaultProxy, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """A registry whose presigned URLs point through the fault proxy."""
    settings = RegistrySettings(data_dir=tmp_path / "registry", public_url=proxy.url)
    async with running(settings) as reg:
        proxy.upstream = reg.url
        yield reg


@pytest.fixture
async def client(proxied: RunningRegistry, proxy: FaultProxy) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(proxy.url, proxied.token) as c:
        yield c


async def _read_back(client: RegistryClient, tmp_path: Path, path: Path) -> bytes:
    revision = await upload_revision(client, path, multipart=SMALL)
    model = await client.create_model(revision)
    dest = tmp_path / "back.bin"
    await download_revision(client, model.file.revisions[0], dest)
    return dest.read_bytes()


async def test_a_multipart_upload_arrives_intact_and_progress_adds_up(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 10 * 64 * KiB + 123)
    sent: list[int] = []
    revision = await upload_revision(client, path, multipart=SMALL, progress=sent.append)
    assert sum(sent) == path.stat().st_size
    assert len(sent) == 11  # one increment per part acknowledged
    assert proxy.hits("PUT", PART) == 11
    assert proxy.hits("PUT", r"/blobs/[0-9a-f]{96}$") == 1  # the properties blob alone
    model = await client.create_model(revision)
    dest = tmp_path / "back.bin"
    await download_revision(client, model.file.revisions[0], dest)
    assert hashlib.sha384(dest.read_bytes()).digest() == hashlib.sha384(path.read_bytes()).digest()


async def test_a_file_at_the_threshold_goes_in_one_put(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 64 * KiB)
    sent: list[int] = []
    await upload_blob(client, path, multipart=SMALL, progress=sent.append)
    assert sent == [64 * KiB]
    assert proxy.hits("PUT", PART) == 0


async def test_a_part_answered_with_an_error_is_retried_alone(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 6 * 64 * KiB)
    proxy.inject(Fault("PUT", PART + "3$", "status", status=503, times=2))
    assert await _read_back(client, tmp_path, path) == path.read_bytes()
    counts = [proxy.hits("PUT", PART + f"{n}$") for n in range(1, 7)]
    assert counts == [1, 1, 3, 1, 1, 1]
    assert proxy.hits("POST", "/api/v2/tokens/multipart-upload") == 1


async def test_a_part_cut_mid_body_is_sent_again(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 4 * 64 * KiB)
    proxy.inject(Fault("PUT", PART + "2$", "drop_request", after_bytes=10 * KiB))
    assert await _read_back(client, tmp_path, path) == path.read_bytes()
    assert [proxy.hits("PUT", PART + f"{n}$") for n in range(1, 5)] == [1, 2, 1, 1]


async def test_a_part_acknowledged_without_an_etag_is_sent_again(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 3 * 64 * KiB)
    # A 200 carrying no ETag (the proxy's own answer): the part is not acknowledged.
    proxy.inject(Fault("PUT", PART + "1$", "status", status=200))
    assert await _read_back(client, tmp_path, path) == path.read_bytes()
    assert [proxy.hits("PUT", PART + f"{n}$") for n in range(1, 4)] == [2, 1, 1]


async def test_an_expired_part_url_begins_a_new_upload_and_sends_every_part(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 3 * 64 * KiB)
    proxy.inject(Fault("PUT", PART + "2$", "status", status=403))
    assert await _read_back(client, tmp_path, path) == path.read_bytes()
    assert proxy.hits("POST", "/api/v2/tokens/multipart-upload") == 2
    assert proxy.hits("PUT", "/api/v2/tokens/multipart-upload") == 2  # cancel, complete
    assert proxy.hits("PUT", PART) == 3 + 3


async def test_a_stored_sha_is_not_uploaded_again(
    client: RegistryClient, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = _file(tmp_path, 3 * 64 * KiB)
    revision = await upload_revision(client, path, multipart=SMALL)
    await client.create_model(revision)
    assert await client.begin_multipart(revision.content_token.sha, 3) is None


async def _begin(
    client: RegistryClient, path: Path, parts: int, salt: str | None = None
) -> tuple[str, str, list[str]]:
    sha = digest_file(path, salt).sha
    begun = await client.begin_multipart(sha, parts)
    assert begun is not None
    return sha, begun.upload_id, [begun.upload_urls[str(n)].url for n in range(1, parts + 1)]


async def test_complete_refuses_missing_duplicate_and_wrong_parts_clearly(
    client: RegistryClient, tmp_path: Path
) -> None:
    path = _file(tmp_path, 3 * 64 * KiB)
    sha, upload_id, urls = await _begin(client, path, 3)
    one = await client.put_part(urls[0], path, 0, 64 * KiB)
    two = await client.put_part(urls[1], path, 64 * KiB, 64 * KiB)

    async def refusal(parts: list[tuple[int, str]]) -> str:
        with pytest.raises(RegistryRejected) as e:
            await client.complete_multipart(sha, upload_id, parts)
        assert e.value.status == 400
        return e.value.detail

    assert "does not list part(s) 3" in await refusal([(1, one), (2, two)])
    assert "never arrived" in await refusal([(1, one), (2, two), (3, "x")])
    assert "more than once" in await refusal([(1, one), (1, one), (2, two), (3, "x")])
    three = await client.put_part(urls[2], path, 2 * 64 * KiB, 64 * KiB)
    assert "ETag of part(s) 1" in await refusal([(1, "stale"), (2, two), (3, three)])
    await client.complete_multipart(sha, upload_id, [(1, f'"{one}"'), (2, two), (3, three)])


async def test_a_part_sent_again_replaces_the_first_copy(
    client: RegistryClient, tmp_path: Path
) -> None:
    path = _file(tmp_path, 2 * 64 * KiB)
    wrong = _file(tmp_path, 2 * 64 * KiB, "wrong.bin")
    salt = "5" * 32
    sha, upload_id, urls = await _begin(client, path, 2, salt)
    await client.put_part(urls[0], wrong, 0, 64 * KiB)  # a bad copy first, then the retry
    one = await client.put_part(urls[0], path, 0, 64 * KiB)
    two = await client.put_part(urls[1], path, 64 * KiB, 64 * KiB)
    await client.complete_multipart(sha, upload_id, [(1, one), (2, two)])
    await client.complete_multipart(sha, upload_id, [(1, one), (2, two)])  # a lost answer
    # A candidate now, served once a revision names its salt (and it matches).
    props = await upload_bytes(client, properties_document("big.bin", 2 * 64 * KiB))
    revision = NewRevision(
        content_token=Token(sha=sha, salt=salt),
        properties_token=props,
        name="big.bin",
        size=2 * 64 * KiB,
    )
    model = await client.create_model(revision)
    dest = tmp_path / "back.bin"
    await download_revision(client, model.file.revisions[0], dest)
    assert dest.read_bytes() == path.read_bytes()


async def test_parts_of_the_wrong_size_are_refused(client: RegistryClient, tmp_path: Path) -> None:
    path = _file(tmp_path, 3 * 64 * KiB)
    _, _, urls = await _begin(client, path, 3)
    await client.put_part(urls[0], path, 0, 64 * KiB)
    with pytest.raises(RegistryRejected, match="every part but the last must have 65536"):
        await client.put_part(urls[1], path, 0, 1000)
    with pytest.raises(RegistryRejected, match="last part has"):
        await client.put_part(urls[2], path, 0, 64 * KiB + 1)


async def test_cancel_drops_the_upload_and_its_file(client: RegistryClient, tmp_path: Path) -> None:
    path = _file(tmp_path, 2 * 64 * KiB)
    sha, upload_id, urls = await _begin(client, path, 2)
    multipart = tmp_path / "registry" / "blobs" / "multipart"
    await client.put_part(urls[0], path, 0, 64 * KiB)
    assert (multipart / upload_id).exists()
    await client.cancel_multipart(sha, upload_id)
    assert not (multipart / upload_id).exists()
    with pytest.raises(RegistryRejected) as e:
        await client.put_part(urls[1], path, 64 * KiB, 64 * KiB)
    assert e.value.status == 404


async def test_an_abandoned_upload_is_swept_after_its_ttl_and_at_start(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    path = _file(tmp_path, 2 * 64 * KiB)
    first = running(RegistrySettings(data_dir=data))
    async with first as reg, RegistryClient(reg.url, reg.token) as c:
        sha, kept, urls = await _begin(c, path, 2)
        await c.put_part(urls[0], path, 0, 64 * KiB)
    # Restarted (on another port): the part acknowledged is still known.
    again = running(RegistrySettings(data_dir=data))
    async with again as reg, RegistryClient(reg.url, reg.token) as c:
        url = reg.url + urls[1][urls[1].index("/blobs/") :]
        two = await c.put_part(url, path, 64 * KiB, 64 * KiB)
        with pytest.raises(RegistryRejected, match="ETag of part"):
            await c.complete_multipart(sha, kept, [(1, "forgotten"), (2, two)])
        _, abandoned, _ = await _begin(c, _file(tmp_path, 10, "other.bin"), 1)
    assert (data / "blobs" / "multipart" / abandoned).exists()
    async with running(RegistrySettings(data_dir=data, multipart_ttl=0)) as reg:
        assert not (data / "blobs" / "multipart" / abandoned).exists()  # swept at start
        async with RegistryClient(reg.url, reg.token) as c:
            with pytest.raises(RegistryRejected) as e:
                await c.cancel_multipart(sha, kept)
            assert e.value.status == 404


async def test_a_part_url_is_a_capability_for_that_part_alone(
    client: RegistryClient, tmp_path: Path
) -> None:
    path = _file(tmp_path, 2 * 64 * KiB)
    _, _, urls = await _begin(client, path, 2)
    forged = urls[0].replace("/parts/", "/parts/").rsplit("/1?", 1)
    async with aiohttp.ClientSession() as s, s.put(f"{forged[0]}/2?{forged[1]}", data=b"x") as r:
        assert r.status == 403


async def test_an_upload_completes_after_a_registry_restart_hashed_again_from_its_file(
    tmp_path: Path,
) -> None:
    data, salt = tmp_path / "registry", "7" * 32
    path = _file(tmp_path, 3 * 64 * KiB)
    first = running(RegistrySettings(data_dir=data))
    async with first as reg, RegistryClient(reg.url, reg.token) as c:
        sha, upload_id, urls = await _begin(c, path, 3, salt)
        one = await c.put_part(urls[0], path, 0, 64 * KiB)
        three = await c.put_part(urls[2], path, 2 * 64 * KiB, 64 * KiB)  # early: not hashed
    again = running(RegistrySettings(data_dir=data))
    async with again as reg, RegistryClient(reg.url, reg.token) as c:
        url = reg.url + urls[1][urls[1].index("/blobs/") :]
        two = await c.put_part(url, path, 64 * KiB, 64 * KiB)
        await c.complete_multipart(sha, upload_id, [(1, one), (2, two), (3, three)])
        props = await upload_bytes(c, properties_document("big.bin", 3 * 64 * KiB))
        revision = NewRevision(
            content_token=Token(sha=sha, salt=salt),
            properties_token=props,
            name="big.bin",
            size=3 * 64 * KiB,
        )
        model = await c.create_model(revision)
        dest = tmp_path / "back.bin"
        await download_revision(c, model.file.revisions[0], dest)
    assert dest.read_bytes() == path.read_bytes()
