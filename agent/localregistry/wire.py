"""Small helpers for the registry's wire format: ids, timestamps, pages.

Each resource's wire shape is built in one place: the `wire` function of its handler module
(`api/*.py`), and `files.py` for a file and the fields every file-backed resource shares.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

# The local registry has one tenant; the SDK requires a tenant id string on some shapes.
TENANT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "istari-agent:local-registry"))


def now() -> str:
    """The current time as ISO-8601 with a UTC offset, as the SDK sends it."""
    return datetime.now(UTC).isoformat()


def new_id() -> str:
    """A fresh resource id."""
    return str(uuid.uuid4())


def loads(doc: str) -> Any:
    """Parse a stored JSON document."""
    return json.loads(doc)


def dumps(value: Any) -> str:
    """Serialise a document for storage."""
    return json.dumps(value, separators=(",", ":"))


def page(items: list[Any], total: int | None, page_no: int, size: int) -> dict[str, Any]:
    """The `{items, total, page, size, pages}` envelope (spec §6)."""
    pages = None if total is None else (total + size - 1) // size
    return {"items": items, "total": total, "page": page_no, "size": size, "pages": pages}
