"""Reading figures out of a suite run's results, and writing them as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def get(suite: dict[str, Any], path: str) -> Any:
    """The value at `part.key.key...` of the suite's results (None when absent)."""
    part, *keys = path.split(".")
    node: Any = suite["parts"].get(part, {}).get("results")
    for key in keys:
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    """A figure for a table: '12.3 ms', or '-' when it was not measured."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
        return f"{text} {unit}".rstrip()
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]
