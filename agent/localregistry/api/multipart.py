"""Multipart uploads: `POST`/`PUT /api/v2/tokens/multipart-upload` and the presigned part URLs
`PUT /blobs/{sha}/parts/{upload_id}/{n}` (spec §5.4; the logic is in multipart.py).

A part URL takes no bearer token: its query carries an HMAC signature for that part of that
upload and an expiry, like an S3 presigned part URL; it is answered 200 with a quoted `ETag`,
as S3 answers. The signature is a secret and is never logged.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from agent.localregistry.errors import validation_error
from agent.localregistry.http import body, reply
from agent.localregistry.multipart import MAX_PARTS, Part, part_op
from agent.localregistry.state import registry
from agent.protocol.content import is_sha

routes = web.RouteTableDef()


class _Begin(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha: str
    num_parts: int = Field(ge=1, le=MAX_PARTS)
    model_id: str | None = None  # a tenant's store on the platform: one store here
    receiving_remote_id: str | None = None


class _CompletedPart(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the Checksum* fields are not checked here

    ETag: str
    PartNumber: int


class _Finalize(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["complete", "cancel"]
    sha: str
    upload_id: str
    completed_parts: list[_CompletedPart] | None = None


def _checked_sha(sha: str, where: list[str | int]) -> str:
    if not is_sha(sha):
        raise validation_error(where, "sha must be 96 lowercase hex characters (salted SHA-384)")
    return sha


@routes.post("/api/v2/tokens/multipart-upload")
async def begin(request: web.Request) -> web.Response:
    req = await body(request, _Begin)
    sha = _checked_sha(req.sha, ["body", "sha"])
    reg = registry(request)
    base = reg.base_url or f"{request.scheme}://{request.host}"
    return reply(reg.multipart.begin(base, sha, req.num_parts))


@routes.put("/api/v2/tokens/multipart-upload")
async def finalize(request: web.Request) -> web.Response:
    req = await body(request, _Finalize)
    sha = _checked_sha(req.sha, ["body", "sha"])
    uploads = registry(request).multipart
    if req.action == "cancel":
        uploads.cancel(sha, req.upload_id)
        return reply({})
    if req.completed_parts is None:
        raise validation_error(["body", "completed_parts"], "complete needs completed_parts")
    parts = [Part(p.PartNumber, p.ETag) for p in req.completed_parts]
    size = await uploads.complete(sha, req.upload_id, parts)
    return reply({"sha": sha, "size": size})


@routes.put("/blobs/{sha}/parts/{upload_id}/{number:[0-9]{1,5}}")
async def put_part(request: web.Request) -> web.Response:
    sha = _checked_sha(request.match_info["sha"], ["path", "sha"])
    upload_id, number = request.match_info["upload_id"], int(request.match_info["number"])
    reg, q = registry(request), request.query
    reg.blobs.check_signature(
        part_op(upload_id, number), sha, q.get("expires", ""), q.get("signature", "")
    )
    etag = await reg.multipart.receive(
        sha, upload_id, number, request.content.iter_any(), request.content_length
    )
    response = reply({"part_number": number})
    response.headers["ETag"] = f'"{etag}"'
    return response
