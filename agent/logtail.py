"""The end of a log file, read without reading the whole of it."""

from __future__ import annotations

from pathlib import Path


def read_tail(path: Path, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of `path` as text, and whether the file was longer (its first
    line then probably cut). OSError (FileNotFoundError for a missing log) is the caller's."""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - max_bytes))
        data = f.read()
    return data.decode("utf-8", "replace"), size > max_bytes
