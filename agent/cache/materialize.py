"""Giving a tool its own copy of a cached file: a reflink where the file system has them, else
a plain copy.

A hard link would be cheapest and wrong: the tool runs as the agent's user, so it can chmod
a read-only link back to writable and change the cached bytes in place for every later job.
A reflink (`ioctl FICLONE`, btrfs, XFS, bcachefs, ...) shares the blocks copy-on-write: as
quick as a link, and a write by the tool touches only its copy. Where cloning is refused
(ext4, tmpfs, another file system) the copy is `shutil.copyfile`, which on Linux copies in
the kernel (sendfile) without passing the bytes through Python.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h


def materialize(src: Path, dest: Path) -> str:
    """Put a private copy of `src` at `dest` (replacing it); returns "reflink" or "copy"."""
    dest.unlink(missing_ok=True)
    with src.open("rb") as s:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(fd, FICLONE, s.fileno())
        except OSError:
            pass  # not supported here (EOPNOTSUPP, EXDEV, EINVAL, ...): copy below
        else:
            return "reflink"
        finally:
            os.close(fd)
    shutil.copyfile(src, dest)
    return "copy"
