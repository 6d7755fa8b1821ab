"""JSON from someone else: parsed without letting its nesting reach Python's recursion limit.

A document nested a thousand deep makes `json.loads` (and later `json.dumps`, pydantic)
raise RecursionError, which would surface as an internal error of whoever parsed it. Every
JSON the agent or the local registry reads from a tool, a module, a job, the broker or a
client goes through `loads`, which turns both a too-deep document and a broken one into a
ValueError that the caller already reports as bad input.
"""

from __future__ import annotations

import json
from typing import Any

# Far beyond any document the protocol carries (a module manifest nests about 6 deep), far
# below where Python's recursion limit makes the json module or pydantic raise.
MAX_DEPTH = 64


class TooDeep(ValueError):
    """The document nests lists and objects deeper than the limit."""


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document; ValueError (TooDeep when nested past `max_depth`) if unusable."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep(_too_deep(max_depth)) from None
    # Fewer brackets than the limit cannot nest deeper than it: most documents skip the walk.
    brackets = (
        data.count("[") + data.count("{")
        if isinstance(data, str)
        else (data.count(b"[") + data.count(b"{"))
    )
    if brackets > max_depth and nested_deeper(value, max_depth):
        raise TooDeep(_too_deep(max_depth))
    return value


def _too_deep(limit: int) -> str:
    return f"nested more than {limit} levels deep"


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` levels deep.

    Iterative, so it cannot itself run out of stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
