"""Attacks on the local registry's blob store: the content stored under an address is only ever
content that hashes to it, written once.

A presigned PUT URL is a bearer capability for one address; whoever holds it (a leaked log, a
hostile tool that saw it) may race the honest upload or get there first with other bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import RunningRegistry, running
from agent.protocol.content import new_salt, properties_document, salted_sha
from agent.registry.client import RegistryClient
from agent.registry.models import NewRevision, Token
from agent.registry.transfer import upload_bytes

DEADLINE = 10.0


def _auth(reg: RunningRegistry) -> dict[str, str]:
    return {"Authorization": f"Bearer {reg.token}"}


async def _upload_url(http: aiohttp.ClientSession, reg: RunningRegistry, sha: str) -> str:
    async with http.get(f"{reg.url}/api/v2/tokens/{sha}/upload-url", headers=_auth(reg)) as r:
        assert r.status == 200, await r.text()
        url: str = (await r.json())["url"]
        return url


async def _put(http: aiohttp.ClientSession, url: str, data: bytes) -> int:
    async with http.put(url, data=data) as r:
        return r.status


async def _revision(client: RegistryClient, content: bytes, salt: str) -> NewRevision:
    props = await upload_bytes(client, properties_document("part.bin", len(content)))
    return NewRevision(
        content_token=Token(sha=salted_sha(content, salt), salt=salt),
        properties_token=props,
        name="part.bin",
        size=len(content),
    )


async def _create_model(
    http: aiohttp.ClientSession, reg: RunningRegistry, rev: NewRevision
) -> aiohttp.ClientResponse:
    body = rev.model_dump(mode="json", exclude_none=True)
    async with http.post(f"{reg.url}/api/v2/models", json=body, headers=_auth(reg)) as r:
        await r.read()
        return r


async def _download(http: aiohttp.ClientSession, reg: RunningRegistry, sha: str) -> bytes:
    """The bytes the registry serves for `sha` through its own download URL."""
    async with http.get(f"{reg.url}/api/v2/tokens/{sha}/download-url", headers=_auth(reg)) as r:
        assert r.status == 200, await r.text()
        url = (await r.json())["url"]
    async with http.get(url) as r:
        assert r.status == 200
        return await r.read()


async def _until_receiving(reg: RunningRegistry) -> None:
    """Wait (with a deadline) until the registry is streaming some upload to disk."""
    tmp = reg.registry.blobs.root / "tmp"
    deadline = time.monotonic() + DEADLINE
    while not any(tmp.iterdir()):
        assert time.monotonic() < deadline, "the slow PUT never reached the registry"
        await asyncio.sleep(0.005)


async def test_a_slow_put_cannot_replace_a_verified_blob(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    content, salt = b"the honest model " * 1000, new_salt()
    sha = salted_sha(content, salt)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"evil bytes, first half; "
        await release.wait()  # held back until the honest blob is in use
        yield b"evil bytes, second half"

    async with aiohttp.ClientSession() as http:
        url = await _upload_url(http, local_registry, sha)
        slow = asyncio.create_task(_put_stream(http, url, slow_body()))
        try:
            await _until_receiving(local_registry)
            assert await _put(http, url, content) == 200
            created = await _create_model(
                http, local_registry, await _revision(client, content, salt)
            )
            assert created.status == 200
        finally:
            release.set()
        async with asyncio.timeout(DEADLINE):
            slow_status = await slow
        served = await _download(http, local_registry, sha)
    assert salted_sha(served, salt) == sha
    assert served == content
    assert slow_status == 409  # the address is taken by verified content


async def _put_stream(http: aiohttp.ClientSession, url: str, body: AsyncIterator[bytes]) -> int:
    async with http.put(url, data=body) as r:
        return r.status


async def test_garbage_put_first_does_not_squat_the_address(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    content, salt = os.urandom(50_000), new_salt()
    sha = salted_sha(content, salt)
    async with aiohttp.ClientSession() as http:
        url = await _upload_url(http, local_registry, sha)
        assert await _put(http, url, b"garbage that got there first") == 200
        # The honest uploader is not told to skip its upload: nothing is verified yet.
        honest_url = await _upload_url(http, local_registry, sha)
        assert await _put(http, honest_url, content) == 200
        created = await _create_model(http, local_registry, await _revision(client, content, salt))
        assert created.status == 200
        assert await _download(http, local_registry, sha) == content
        # Verified now: a further PUT is refused and the upload URL says it is stored.
        assert await _put(http, url, b"more garbage") == 409
        async with http.get(
            f"{local_registry.url}/api/v2/tokens/{sha}/upload-url", headers=_auth(local_registry)
        ) as r:
            assert r.status == 409


async def test_garbage_alone_never_verifies_and_is_never_served(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    content, salt = b"what the revision claims", new_salt()
    sha = salted_sha(content, salt)
    async with aiohttp.ClientSession() as http:
        assert await _put(http, await _upload_url(http, local_registry, sha), b"garbage") == 200
        created = await _create_model(http, local_registry, await _revision(client, content, salt))
        assert created.status == 422
        async with http.get(
            f"{local_registry.url}/api/v2/tokens/{sha}/download-url",
            headers=_auth(local_registry),
        ) as r:
            assert r.status == 404
        # Even a correctly signed GET URL serves nothing for an unverified address.
        signed, _ = local_registry.registry.blobs.presign(local_registry.url, "get", sha)
        async with http.get(signed) as r:
            assert r.status == 404


async def test_a_pending_upload_survives_a_restart_and_verifies_after_it(tmp_path: Path) -> None:
    settings = RegistrySettings(data_dir=tmp_path / "registry")
    content, salt = os.urandom(20_000), new_salt()
    sha = salted_sha(content, salt)
    async with running(settings) as first, aiohttp.ClientSession() as http:
        url = await _upload_url(http, first, sha)
        assert await _put(http, url, b"garbage") == 200
        assert await _put(http, url, content) == 200
    async with running(settings) as second, aiohttp.ClientSession() as http:
        async with RegistryClient(second.url, second.token) as client:
            rev = await _revision(client, content, salt)
        assert (await _create_model(http, second, rev)).status == 200
        served = await _download(http, second, sha)
    assert hashlib.sha384(served + salt.encode()).hexdigest() == sha
    pending = second.registry.blobs.root / "pending"
    assert list(pending.iterdir()) == []  # the garbage candidate was discarded


async def test_what_a_crash_or_an_older_release_left_is_never_served(tmp_path: Path) -> None:
    settings = RegistrySettings(data_dir=tmp_path / "registry")
    content, salt = os.urandom(10_000), new_salt()
    sha = salted_sha(content, salt)
    old, old_salt = b"stored unchecked by an older release", new_salt()
    old_sha = salted_sha(old, old_salt)
    async with running(settings) as first, aiohttp.ClientSession() as http:
        assert await _put(http, await _upload_url(http, first, sha), content) == 200
        blobs = first.registry.blobs
    # Leftovers: a final file with no blobs row (crash between link and commit, or tampering),
    # a candidate file with no row, a candidate row with no file, and an unchecked blob
    # (salt NULL) as the previous release stored it.
    final = blobs.path(sha)
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(b"garbage at the final path")
    (blobs.root / "pending" / "orphan").write_bytes(b"garbage without a row")
    blobs.path(old_sha).parent.mkdir(parents=True, exist_ok=True)
    blobs.path(old_sha).write_bytes(old)
    with sqlite3.connect(settings.data_dir / "registry.sqlite3") as db:
        db.execute(
            "INSERT INTO blob_candidates(id, sha, size, digest, created) "
            "VALUES ('gone', ?, 5, NULL, '2026-01-01T00:00:00+00:00')",
            (sha,),
        )
        db.execute(
            "INSERT INTO blobs(sha, size, created, salt) "
            "VALUES (?, ?, '2026-01-01T00:00:00+00:00', NULL)",
            (old_sha, len(old)),
        )
    db.close()

    async with running(settings) as second, aiohttp.ClientSession() as http:
        for unverified in (sha, old_sha):
            async with http.get(
                f"{second.url}/api/v2/tokens/{unverified}/download-url", headers=_auth(second)
            ) as r:
                assert r.status == 404
        names = {p.name for p in (blobs.root / "pending").iterdir()}
        assert "orphan" not in names
        assert len(names) == 2  # the honest upload, and the older release's blob
        async with RegistryClient(second.url, second.token) as client:
            for data, s in ((content, salt), (old, old_salt)):
                assert (
                    await _create_model(http, second, await _revision(client, data, s))
                ).status == 200
        assert await _download(http, second, sha) == content
        assert await _download(http, second, old_sha) == old
        rows = second.registry.conn.execute("SELECT COUNT(*) FROM blob_candidates").fetchone()[0]
    assert rows == 0


async def test_revisions_racing_to_verify_one_address_promote_it_once(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    content, salt = os.urandom(30_000), new_salt()
    sha = salted_sha(content, salt)
    async with aiohttp.ClientSession() as http:
        url = await _upload_url(http, local_registry, sha)
        for body in (b"garbage one", content, b"garbage two"):
            assert await _put(http, url, body) == 200
        rev = await _revision(client, content, salt)
        created = await asyncio.gather(
            *(_create_model(http, local_registry, rev) for _ in range(4))
        )
        assert [r.status for r in created] == [200] * 4
        assert await _download(http, local_registry, sha) == content
    conn = local_registry.registry.conn
    assert conn.execute("SELECT COUNT(*) FROM blob_candidates").fetchone()[0] == 0
    assert list((local_registry.registry.blobs.root / "pending").iterdir()) == []


async def test_one_put_url_cannot_fill_the_disk_with_unverified_uploads(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    from agent.localregistry.blobs import MAX_CANDIDATES

    content, salt = b"the honest model", new_salt()
    sha = salted_sha(content, salt)
    pending = local_registry.registry.blobs.root / "pending"
    async with aiohttp.ClientSession() as http:
        url = await _upload_url(http, local_registry, sha)
        assert await _put(http, url, content) == 200
        for i in range(MAX_CANDIDATES - 1):
            assert await _put(http, url, f"garbage {i}".encode()) == 200
        assert await _put(http, url, b"one too many") == 409
        assert len(list(pending.iterdir())) == MAX_CANDIDATES
        created = await _create_model(http, local_registry, await _revision(client, content, salt))
        assert created.status == 200
        assert await _download(http, local_registry, sha) == content
    assert list(pending.iterdir()) == []  # the others discarded once one verified


async def test_uploads_no_revision_named_for_a_week_are_dropped_at_start(tmp_path: Path) -> None:
    from agent.localregistry.blobs import CANDIDATE_DAYS

    settings = RegistrySettings(data_dir=tmp_path / "registry")
    fresh, stale = new_salt(), new_salt()
    async with running(settings) as first, aiohttp.ClientSession() as http:
        for salt in (fresh, stale):
            sha = salted_sha(b"content", salt)
            assert await _put(http, await _upload_url(http, first, sha), b"content") == 200
        pending = first.registry.blobs.root / "pending"
    old = time.strftime(
        "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - (CANDIDATE_DAYS + 1) * 86400)
    )
    with sqlite3.connect(settings.data_dir / "registry.sqlite3") as db:
        db.execute(
            "UPDATE blob_candidates SET created = ? WHERE sha = ?",
            (old, salted_sha(b"content", stale)),
        )
    db.close()
    async with running(settings) as second:
        left = second.registry.conn.execute("SELECT sha FROM blob_candidates").fetchall()
        assert [r["sha"] for r in left] == [salted_sha(b"content", fresh)]
        assert len(list(pending.iterdir())) == 1
