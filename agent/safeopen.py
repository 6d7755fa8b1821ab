"""Files in a directory a tool can write to: read and written without following a link.

A job's work directory belongs to the tool while it runs (same user), so any name in it may
have become a symlink (to the agent's key, to a login node's files) or a FIFO (whose reader
would wait forever) by the time the agent looks. The agent therefore opens what it reads
there with `O_NOFOLLOW | O_NONBLOCK` and accepts only a regular file, and creates what it
writes there afresh (`O_CREAT | O_EXCL | O_NOFOLLOW`, after removing whatever held the name).
Both raise OSError (NotRegularFile for a FIFO, socket, device or directory).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO


class NotRegularFile(OSError):
    """The name holds something other than a regular file."""


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, if it is a regular file and not a link to one."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(fd, "rb")


def create_new(path: Path, mode: int = 0o600) -> BinaryIO:
    """`path` made anew for writing: whatever held the name (a link, say) is removed first,
    never written through."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, mode), "wb")
