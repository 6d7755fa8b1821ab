"""Listing a system's workflow log entries: `GET .../workflow_log/entries`, a cursor page.

Newest first (inferred: the docs do not say). The cursor is opaque to clients; here it is the
position after which the next page starts, so pages stay stable while entries are added.
Filters follow the SDK's docstrings: `status` and `branch_id` match exactly, `title` is a
case-insensitive substring, each may repeat, and a leading `!` excludes. Plain values are
alternatives (any may match); `!` values all must not match.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from agent.localregistry.api.workflows import ENTRIES, entry_wire, system_id_of
from agent.localregistry.errors import validation_error
from agent.localregistry.http import query_all, query_archived, query_bool, query_int, reply
from agent.localregistry.state import registry
from agent.localregistry.store import workflows

routes = web.RouteTableDef()

_PREFIX = "after:"
_MAX_SEQ = 2**63 - 1  # SQLite's largest INTEGER


def encode_cursor(seq: int) -> str:
    """The opaque cursor of the page that starts after the entry at `seq`."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor names; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raw = ""
    digits = raw[len(_PREFIX) :]
    # ASCII digits only (int() takes other scripts' too); SQLite takes 64 bits at most.
    if not raw.startswith(_PREFIX) or not (digits.isascii() and digits.isdecimal()):
        msg = "not a cursor this registry returned"
        raise ValueError(msg)
    if len(digits) > len(str(_MAX_SEQ)) or int(digits) > _MAX_SEQ:
        msg = "not a cursor this registry returned (its position is beyond 64 bits)"
        raise ValueError(msg)
    return int(digits)


def _cursor(request: web.Request) -> str | None:
    cursor = request.query.get("cursor") or None
    if cursor is not None:
        try:
            decode_cursor(cursor)
        except ValueError as e:
            raise validation_error(["query", "cursor"], str(e)) from None
    return cursor


@routes.get(ENTRIES)
async def list_entries(request: web.Request) -> web.Response:
    system_id = system_id_of(request)
    size = query_int(request, "size", 10, 0, 100)
    include_total = query_bool(request, "include_total", True)
    cursor = _cursor(request)
    archived = query_archived(request)
    filters = {c: query_all(request, c) for c in ("status", "branch_id", "title")}
    total, rows = workflows.entries(
        registry(request).conn,
        system_id,
        archived=archived,
        filters=filters,
        with_total=include_total,
        before=None if cursor is None else decode_cursor(cursor),
        limit=size + 1,
    )
    more = len(rows) > size
    rows = rows[:size]
    doc: dict[str, Any] = {
        "items": [entry_wire(r) for r in rows],
        "total": total,
        "current_page": cursor,
        "current_page_backwards": None,
        "previous_page": None,  # inferred: pages go forward only here
        "next_page": encode_cursor(rows[-1]["seq"]) if more and rows else None,
    }
    return reply(doc)
