"""The end of a log file, read without reading the whole of it; a log cut down to a size.

A job's log lies where its tool can replace it: it is only ever read as a regular file, never
through a link (agent/safeopen.py)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from agent.safeopen import create_new, open_regular


def read_tail(path: Path, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of `path` as text, and whether the file was longer (its first
    line then probably cut). OSError (FileNotFoundError for a missing log) is the caller's."""
    with open_regular(path) as f:  # a tool may have made it a link or a FIFO
        size = f.seek(0, 2)
        f.seek(max(0, size - max_bytes))
        data = f.read()
    return data.decode("utf-8", "replace"), size > max_bytes


def copy_capped(source: Path, dest: Path, max_bytes: int) -> int:
    """Copy `source` to `dest` within `max_bytes`: all of it when it fits, else its head and
    its tail (half each) around a line saying how much was cut. The bytes cut, 0 if none."""
    with open_regular(source) as src, create_new(dest) as out:
        size = src.seek(0, 2)
        src.seek(0)
        if size <= max_bytes:
            _copy_range(src, out, size)
            return 0
        marker = b"\n[... %d bytes of the log were cut here: the upload keeps at most %d ...]\n"
        room = max(0, max_bytes - len(marker % (size, max_bytes)))
        head, tail = room // 2, room - room // 2
        cut = size - head - tail
        _copy_range(src, out, head)
        out.write(marker % (cut, max_bytes))
        src.seek(size - tail)
        _copy_range(src, out, tail)
    return cut


def _copy_range(src: BinaryIO, out: BinaryIO, n: int) -> None:
    while n > 0 and (chunk := src.read(min(n, 1024 * 1024))):
        out.write(chunk)
        n -= len(chunk)
