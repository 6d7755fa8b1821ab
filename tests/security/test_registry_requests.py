"""Requests a valid client can send that once made the local registry answer 500: each is now
a 4xx that names the problem, and the registry keeps serving."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.content import new_salt, salted_sha
from agent.registry.client import RegistryClient
from agent.registry.models import Token
from agent.registry.transfer import upload_bytes


@pytest.fixture
async def http(local_registry: RunningRegistry) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {local_registry.token}"}
    async with aiohttp.ClientSession(local_registry.url, headers=headers) as session:
        yield session


@pytest.fixture
async def entries(http: aiohttp.ClientSession) -> str:
    """The workflow-log entries route of a new system."""
    async with http.post("/api/v2/systems", json={"name": "s", "description": "d"}) as r:
        assert r.status == 200
        system_id = (await r.json())["id"]
    return f"/api/v3/systems/{system_id}/workflow_log/entries"


async def refused(
    http: aiohttp.ClientSession, method: str, path: str, status: int, detail: str, **kw: Any
) -> None:
    """The request gets `status` with `detail` in its message, and the registry still serves."""
    async with http.request(method, path, **kw) as r:
        body = await r.text()
        assert r.status == status, body
    assert detail in body, body
    async with http.get("/api/v2/health/readiness") as r:
        assert r.status == 200


async def test_json_nested_a_thousand_deep_is_422(http: aiohttp.ClientSession) -> None:
    headers = {"Content-Type": "application/json"}
    deep = b"[" * 1000 + b"]" * 1000
    await refused(http, "POST", "/api/v2/agents", 422, "nested", data=deep, headers=headers)
    # Deep but within what json.loads manages: refused the same way before it is stored.
    hidden = b'{"name": "p", "description": "d", "x": ' + b"[" * 500 + b"]" * 500 + b"}"
    await refused(http, "POST", "/api/v2/agent_pools", 422, "nested", data=hidden, headers=headers)
    await refused(http, "POST", "/api/v2/agents", 422, "not valid JSON", data=deep, headers=headers)


async def test_a_cursor_beyond_64_bits_is_422(http: aiohttp.ClientSession, entries: str) -> None:
    cursor = base64.urlsafe_b64encode(b"after:" + b"9" * 30).decode().rstrip("=")
    await refused(http, "GET", f"{entries}?cursor={cursor}", 422, "cursor")


@pytest.mark.parametrize("value", ["", "!"])
async def test_a_thousand_repeated_filters_are_422(
    http: aiohttp.ClientSession, entries: str, value: str
) -> None:
    query = "&".join([f"title={value}"] * 1005)
    await refused(http, "GET", f"{entries}?{query}", 422, "at most 100")


async def test_the_most_filters_allowed_still_answer(
    http: aiohttp.ClientSession, entries: str
) -> None:
    query = "&".join(
        f"{name}=!{i}" for name in ("title", "status", "branch_id") for i in range(100)
    )
    async with http.get(f"{entries}?{query}") as r:
        assert r.status == 200, await r.text()


@pytest.mark.parametrize("param", ["page", "size"])
async def test_integers_beyond_64_bits_in_queries_are_422(
    http: aiohttp.ClientSession, entries: str, param: str
) -> None:
    huge = "9" * 30
    await refused(http, "GET", f"/api/v2/jobs?{param}={huge}", 422, param)
    await refused(http, "GET", f"/api/v2/agents?{param}={huge}", 422, param)
    await refused(http, "GET", f"{entries}?size={huge}", 422, "size")


async def test_a_hostile_properties_blob_is_ignored_not_a_500(
    http: aiohttp.ClientSession, client: RegistryClient
) -> None:
    content, salt = b"model", new_salt()
    content_token = await _stored(client, content, salt)
    for props in (b"[" * 20_000, b'{"file_name": ["not", "a", "name"], "mime": {"x": 1}}'):
        props_token = await upload_bytes(client, props)
        rev = {"content_token": content_token.model_dump(mode="json"),
               "properties_token": props_token.model_dump(mode="json")}  # fmt: skip
        async with http.post("/api/v2/models", json=rev) as r:
            assert r.status == 200, await r.text()
            current = (await r.json())["file"]["revisions"][-1]
        assert current["name"] is None
        assert current["mime"] is None


async def _stored(client: RegistryClient, content: bytes, salt: str) -> Token:
    sha = salted_sha(content, salt)
    url = await client.upload_url(sha)
    if url is not None:
        await client.put_blob(url.url, content)
    return Token(sha=sha, salt=salt)
