"""Every kind of bad request gets the right status and a clear detail, and changes nothing.

Each case runs against a real registry with real data in it; afterwards the test checks that
the database holds exactly what it held before and that the server still answers.
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.content import new_salt, salted_sha
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from tests.support.registry import agent_with_module, submit_jobs

TABLES = ["tokens", "blobs", "files", "revisions", "resources", "jobs", "job_status", "agents",
          "agent_history", "pools", "pool_members", "modules", "functions"]  # fmt: skip


def snapshot(conn: sqlite3.Connection) -> dict[str, Any]:
    """Row counts of every table plus each job's status: what 'no change' is checked on."""
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    statuses = dict(conn.execute("SELECT id, status FROM jobs").fetchall())
    return {"counts": counts, "statuses": statuses}


@pytest.fixture
async def http(local_registry: RunningRegistry) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(local_registry.url) as session:
        yield session


@pytest.fixture
async def world(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> dict[str, str]:
    """A registry holding a model, a Pending job, a Claimed job and an agent."""
    pending, claimed = await submit_jobs(client, tmp_path, 2)
    agent = await agent_with_module(client)
    await client.update_job_status(claimed.id, JobStatus.CLAIMED, agent)
    assert pending.model_id is not None
    return {"pending": pending.id, "claimed": claimed.id, "agent": agent, "model": pending.model_id}


def auth(reg: RunningRegistry) -> dict[str, str]:
    return {"Authorization": f"Bearer {reg.token}"}


async def expect(
    reg: RunningRegistry,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    status: int,
    detail: str,
    **kw: Any,
) -> None:
    """Send one bad request; check the status, the detail text, and that nothing changed."""
    before = snapshot(reg.registry.conn)
    kw.setdefault("headers", auth(reg))
    async with http.request(method, path, **kw) as resp:
        body = await resp.json()
        assert resp.status == status, body
    assert detail in str(body["detail"]), body
    assert snapshot(reg.registry.conn) == before
    async with http.get("/api/v2/health/readiness") as resp:
        assert resp.status == 200


async def test_missing_and_wrong_tokens_are_401(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    path = f"/api/v2/jobs/{world['pending']}"
    await expect(local_registry, http, "GET", path, 401, "bearer token", headers={})
    wrong = {"Authorization": "Bearer not-the-token"}
    await expect(local_registry, http, "GET", path, 401, "bearer token", headers=wrong)
    basic = {"Authorization": f"Basic {local_registry.token}"}
    await expect(local_registry, http, "GET", path, 401, "bearer token", headers=basic)


async def test_health_is_the_only_open_route(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/v2/health/readiness") as resp:
        assert resp.status == 200
        assert (await resp.json())["healthy"] is True
    async with http.get("/api/v2/agents") as resp:
        assert resp.status == 401


async def test_malformed_json_is_422(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    await expect(
        local_registry,
        http,
        "POST",
        "/api/v2/agents",
        422,
        "not valid JSON",
        data=b'{"agent_version": ',
        headers={**auth(local_registry), "Content-Type": "application/json"},
    )
    await expect(
        local_registry,
        http,
        "POST",
        "/api/v2/agents",
        422,
        "agent_version",
        json={"host_os": "Ubuntu 22.04"},
        headers=auth(local_registry),
    )


async def test_unknown_enum_values_are_422(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    agent = world["agent"]
    await expect(
        local_registry,
        http,
        "PUT",
        f"/api/v2/agents/{agent}/status",
        422,
        "name",
        json={"name": "Sleeping"},
    )
    await expect(
        local_registry,
        http,
        "PUT",
        f"/api/v2/jobs/{world['pending']}/status?status_name=claimed&agent_id={agent}",
        422,
        "is not one of",
    )
    await expect(local_registry, http, "GET", "/api/v2/jobs?status_name=Done", 422, "is not one of")


async def test_illegal_moves_and_second_claims_are_409(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    agent = world["agent"]
    pending, claimed = world["pending"], world["claimed"]
    await expect(
        local_registry,
        http,
        "PUT",
        f"/api/v2/jobs/{pending}/status?status_name=Completed&agent_id={agent}",
        409,
        "cannot move to Completed",
    )
    await expect(
        local_registry,
        http,
        "PUT",
        f"/api/v2/jobs/{claimed}/status?status_name=Claimed&agent_id={agent}",
        409,
        "cannot move to Claimed",
    )
    await expect(
        local_registry,
        http,
        "PUT",
        f"/api/v2/jobs/{pending}/status?status_name=Claimed",
        409,
        "needs agent_id",
    )


async def test_path_like_and_unknown_ids(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    await expect(local_registry, http, "GET", "/api/v2/jobs/..%2Fx", 422, "must be a UUID")
    await expect(
        local_registry, http, "GET", "/api/v2/models/%2E%2E%2F%2E%2E%2Fetc", 422, "must be a UUID"
    )
    missing = "00000000-0000-4000-8000-000000000000"
    await expect(local_registry, http, "GET", f"/api/v2/jobs/{missing}", 404, "no job")
    await expect(
        local_registry,
        http,
        "GET",
        "/api/v2/tokens/..%2Fsecret/download-url",
        422,
        "96 lowercase hex",
    )


async def test_oversized_json_body_is_413(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    huge = io.BytesIO(b'{"name": "' + b"x" * (17 * 1024 * 1024) + b'"}')
    await expect(
        local_registry,
        http,
        "POST",
        "/api/v2/agent_pools",
        413,
        "exceeds the limit",
        data=huge,
        headers={**auth(local_registry), "Content-Type": "application/json"},
    )


async def _upload_url(http: aiohttp.ClientSession, reg: RunningRegistry, sha: str) -> str:
    async with http.get(f"/api/v2/tokens/{sha}/upload-url", headers=auth(reg)) as resp:
        assert resp.status == 200
        url: str = (await resp.json())["url"]
        return url


async def test_sha_that_does_not_match_the_bytes_is_refused(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    salt = new_salt()
    sha = salted_sha(b"the real bytes", salt)
    async with http.put(await _upload_url(http, local_registry, sha), data=b"other bytes") as r:
        assert r.status == 200
    other_salt = new_salt()
    props_sha = salted_sha(b"{}", other_salt)
    async with http.put(await _upload_url(http, local_registry, props_sha), data=b"{}") as r:
        assert r.status == 200
    body = {"content_token": {"sha": sha, "salt": salt},
            "properties_token": {"sha": props_sha, "salt": other_salt}}  # fmt: skip
    await expect(
        local_registry, http, "POST", "/api/v2/models", 422, "does not match sha384", json=body
    )
    body["content_token"] = {"sha": salted_sha(b"never uploaded", salt), "salt": salt}
    await expect(local_registry, http, "POST", "/api/v2/models", 422, "no blob with sha", json=body)
    body["content_token"] = {"sha": "abc", "salt": salt}
    await expect(local_registry, http, "POST", "/api/v2/models", 422, "96 lowercase hex", json=body)


async def test_second_upload_of_a_known_sha_is_409(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    salt = new_salt()
    sha = salted_sha(b"once", salt)
    url = await _upload_url(http, local_registry, sha)
    async with http.put(url, data=b"once") as resp:
        assert resp.status == 200
    # A PUT is only a candidate until a revision names the sha with its salt (blobs.py);
    # from then on the address is taken.
    props_salt = new_salt()
    props_sha = salted_sha(b"{}", props_salt)
    async with http.put(await _upload_url(http, local_registry, props_sha), data=b"{}") as r:
        assert r.status == 200
    body = {"content_token": {"sha": sha, "salt": salt},
            "properties_token": {"sha": props_sha, "salt": props_salt}}  # fmt: skip
    async with http.post("/api/v2/models", json=body, headers=auth(local_registry)) as resp:
        assert resp.status == 200
    await expect(
        local_registry, http, "GET", f"/api/v2/tokens/{sha}/upload-url", 409, "already exists"
    )
    await expect(
        local_registry,
        http,
        "PUT",
        url[len(local_registry.url) :],
        409,
        "already exists",
        data=b"twice",
        headers={},
    )


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?{urlencode(query)}"


async def test_tampered_and_expired_presigned_urls_are_403(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    salt = new_salt()
    sha = salted_sha(b"payload", salt)
    url = await _upload_url(http, local_registry, sha)
    sig = parse_qs(urlsplit(url).query)["signature"][0]
    tampered = _with_query(url, signature=("0" if sig[0] != "0" else "1") + sig[1:])
    await expect(
        local_registry,
        http,
        "PUT",
        tampered,
        403,
        "signature is invalid",
        data=b"payload",
        headers={},
    )
    later = _with_query(url, expires=str(int(time.time()) + 10_000))
    await expect(
        local_registry, http, "PUT", later, 403, "signature is invalid", data=b"payload", headers={}
    )
    as_get = _with_query(url, op="get")
    await expect(local_registry, http, "GET", as_get, 403, "signature is invalid", headers={})
    # An expired URL, correctly signed: sign one with a past expiry.
    blobs = local_registry.registry.blobs
    ttl, blobs.url_ttl = blobs.url_ttl, -5
    try:
        expired, _ = blobs.presign(local_registry.url, "put", sha)
    finally:
        blobs.url_ttl = ttl
    await expect(
        local_registry,
        http,
        "PUT",
        expired[len(local_registry.url) :],
        403,
        "has expired",
        data=b"payload",
        headers={},
    )


async def test_oversized_blob_is_413_and_leaves_nothing(
    local_registry: RunningRegistry, http: aiohttp.ClientSession, world: dict[str, str]
) -> None:
    blobs = local_registry.registry.blobs
    blobs.max_blob_size = 1024
    salt = new_salt()
    data = b"x" * 4096
    url = await _upload_url(http, local_registry, salted_sha(data, salt))
    path = url[len(local_registry.url) :]
    await expect(local_registry, http, "PUT", path, 413, "exceeds the limit", data=data, headers={})

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(4):
            yield b"x" * 1024

    await expect(
        local_registry, http, "PUT", path, 413, "exceeds the limit", data=chunked(), headers={}
    )
    assert list((blobs.root / "tmp").iterdir()) == []
