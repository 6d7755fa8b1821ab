"""Request parsing shared by the registry's handlers: bodies, ids, query parameters."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from agent import jsontext
from agent.localregistry.errors import PayloadTooLarge, Unprocessable, validation_error
from agent.localregistry.state import MAX_JSON_KEY

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=StrEnum)

# Values one repeated query filter may carry: each becomes an SQL expression, and SQLite
# refuses an expression tree deeper than 1000.
MAX_FILTER_VALUES = 100

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def reply(value: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.json_response(value, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; an empty body reads as None."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        msg = f"request body exceeds the limit of {request.app[MAX_JSON_KEY]} bytes"
        raise PayloadTooLarge(msg) from None
    if not raw.strip():
        return None
    try:
        return jsontext.loads(raw)
    except jsontext.TooDeep as e:
        msg = f"body is not valid JSON here: {e}"
        raise validation_error(["body"], msg, "json_invalid") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise validation_error(["body"], f"body is not valid JSON: {e}", "json_invalid") from None


def parse(model: type[M], value: Any, where: str = "body") -> M:
    """Validate `value` as `model`, answering 422 in FastAPI's shape on failure."""
    try:
        return model.model_validate(value)
    except ValidationError as e:
        detail = [
            {"loc": [where, *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in e.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise Unprocessable(detail) from None


async def body(request: web.Request, model: type[M]) -> M:
    """Read and validate the JSON body as `model`."""
    return parse(model, await read_json(request))


async def optional_body(request: web.Request, model: type[M]) -> M | None:
    """Like `body`, but an empty body is None."""
    value = await read_json(request)
    return None if value is None else parse(model, value)


def path_id(request: web.Request, name: str) -> str:
    """A UUID path parameter; anything else (`../x`, say) is a 422."""
    value = request.match_info[name]
    if not _UUID.fullmatch(value):
        raise validation_error(["path", name], f"{name} must be a UUID, got {value[:64]!r}")
    return value


def is_uuid(value: str) -> bool:
    """Whether `value` is a lowercase UUID string."""
    return _UUID.fullmatch(value) is not None


def query_str(request: web.Request, name: str, *, required: bool = False) -> str | None:
    """A string query parameter."""
    value = request.query.get(name)
    if value is None and required:
        raise validation_error(["query", name], "field required", "missing")
    return value


def query_all(request: web.Request, name: str) -> list[str]:
    """Every value of a repeated query parameter, at most MAX_FILTER_VALUES of them."""
    values = request.query.getall(name, [])
    if len(values) > MAX_FILTER_VALUES:
        raise validation_error(
            ["query", name],
            f"at most {MAX_FILTER_VALUES} values of {name} per request, got {len(values)}",
        )
    return values


def query_uuid(request: web.Request, name: str, *, required: bool = False) -> str | None:
    """A UUID query parameter."""
    value = query_str(request, name, required=required)
    if value is not None and not is_uuid(value):
        raise validation_error(["query", name], f"{name} must be a UUID")
    return value


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(["query", name], f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise validation_error(["query", name], f"{name} must be between {lo} and {hi}")
    return value


def query_bool(request: web.Request, name: str, default: bool) -> bool:
    """A boolean query parameter (`true`/`false`, as the SDK sends them)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise validation_error(["query", name], f"{name} must be true or false")


def query_enum(
    request: web.Request, name: str, enum: type[E], *, required: bool = False
) -> E | None:
    """An enum query parameter with its exact wire spelling."""
    raw = query_str(request, name, required=required)
    if raw is None:
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise validation_error(
            ["query", name], f"{raw[:64]!r} is not one of: {allowed}", "enum"
        ) from None


def paging(request: web.Request) -> tuple[int, int]:
    """`(page, size)` with the spec's bounds: page >= 1, size 1..100, default 10."""
    return query_int(request, "page", 1, 1, 1_000_000), query_int(request, "size", 10, 1, 100)


def query_archived(request: web.Request) -> bool | None:
    """`archive_status`: `active` (the default) is False, `archived` True, `all` None."""
    raw = query_str(request, "archive_status") or "active"
    if raw not in {"active", "archived", "all"}:
        raise validation_error(["query", "archive_status"], "must be active, archived or all")
    return None if raw == "all" else raw == "archived"
