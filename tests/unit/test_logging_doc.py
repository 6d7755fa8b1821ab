"""docs/logging.md lists every event the code logs (found by reading the code's syntax tree)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def logged_events() -> set[str]:
    """First arguments of `log.<level>("...")` calls anywhere in the package."""
    events = set()
    for path in (ROOT / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target, args = node.func, node.args
            if (
                target.attr in LEVELS
                and isinstance(target.value, ast.Name)
                and target.value.id == "log"
                and args
                and isinstance(args[0], ast.Constant)
                and isinstance(args[0].value, str)
            ):
                events.add(args[0].value)
    return events


def test_every_logged_event_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+\.[a-z_.]+)`", (ROOT / "docs/logging.md").read_text()))
    events = logged_events()
    assert len(events) > 40  # the scan found the calls
    assert not events - documented, sorted(events - documented)
