"""Blob tokens and presigned URLs: `/api/v2/tokens/...` and the unauthenticated `/blobs/{sha}`.

`/blobs/{sha}` takes no bearer token: its query carries an HMAC signature and an expiry
instead, like an S3 presigned URL. The signature is a secret and is never logged.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.localregistry.errors import Conflict, NotFound, validation_error
from agent.localregistry.http import read_json, reply
from agent.localregistry.state import registry
from agent.protocol.content import is_sha

routes = web.RouteTableDef()


def _sha(request: web.Request) -> str:
    sha = request.match_info["sha"]
    if not is_sha(sha):
        raise validation_error(
            ["path", "sha"], "sha must be 96 lowercase hex characters (salted SHA-384)"
        )
    return sha


def _url(request: web.Request, op: str, sha: str) -> dict[str, Any]:
    reg = registry(request)
    url, expires = reg.blobs.presign(reg.base_url or _origin(request), op, sha)
    return {"url": url, "expires": expires}


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@routes.get("/api/v2/tokens/{sha}/upload-url")
async def upload_url(request: web.Request) -> web.Response:
    sha = _sha(request)
    if registry(request).blobs.exists(sha):
        msg = f"Sha already exists: {sha}"
        raise Conflict(msg)
    return reply(_url(request, "put", sha))


@routes.post("/api/v2/tokens/upload-urls_bulk")
async def upload_urls_bulk(request: web.Request) -> web.Response:
    shas = await read_json(request)
    if not isinstance(shas, list) or not all(isinstance(s, str) and is_sha(s) for s in shas):
        raise validation_error(["body"], "body must be a list of 96-hex shas")
    if len(shas) > 100:
        raise validation_error(["body"], "at most 100 shas per request")
    return reply([_url(request, "put", s) for s in shas])


@routes.get("/api/v2/tokens/{sha}/download-url")
async def download_url(request: web.Request) -> web.Response:
    sha = _sha(request)
    if not registry(request).blobs.exists(sha):
        msg = f"no blob with sha {sha}"
        raise NotFound(msg)
    return reply(_url(request, "get", sha))


def _presigned(request: web.Request, op: str) -> str:
    sha = _sha(request)
    q = request.query
    registry(request).blobs.check_signature(op, sha, q.get("expires", ""), q.get("signature", ""))
    return sha


@routes.put("/blobs/{sha}")
async def put_blob(request: web.Request) -> web.Response:
    sha = _presigned(request, "put")
    size = await registry(request).blobs.receive(
        sha, request.content.iter_chunked(1024 * 1024), request.content_length
    )
    return reply({"sha": sha, "size": size})


@routes.get("/blobs/{sha}")
async def get_blob(request: web.Request) -> web.StreamResponse:
    sha = _presigned(request, "get")
    blobs = registry(request).blobs
    if not blobs.exists(sha):
        msg = f"no blob with sha {sha}"
        raise NotFound(msg)
    return web.FileResponse(blobs.path(sha), headers={"Content-Type": "application/octet-stream"})
