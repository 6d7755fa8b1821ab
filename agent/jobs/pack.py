"""A directory output packed into one zip, without ever following a link.

A tool controls everything inside the directories it declares as outputs, so nothing in them
is trusted: each symlink is stored as a symlink (the zip entry holds the link's target path,
with the Unix file type in its external attributes, as Info-ZIP's `zip -y` stores it), never
the content it points at; FIFOs, sockets and devices are left out (reading a FIFO would wait
forever) and counted; regular files are opened with O_NOFOLLOW and checked again once open, so
a file swapped for a link meanwhile is left out too. Nothing outside the directory is read.
"""

from __future__ import annotations

import os
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1024 * 1024
# The dates a zip entry can hold: a tool may set any mtime at all.
_ZIP_FIRST = time.mktime((1980, 1, 1, 0, 0, 0, 0, 0, -1))
_ZIP_LAST = time.mktime((2107, 12, 31, 23, 59, 58, 0, 0, -1))


@dataclass
class Packed:
    """What went into an archive: entries by kind, and what was left out."""

    files: int = 0
    links: int = 0
    skipped: list[str] = field(default_factory=list)  # special files, by archive name


def zip_directory(source: Path, archive: BinaryIO) -> Packed:
    """Write `source`'s tree to `archive` (deflated); entries are relative, `/`-separated.

    `os.fwalk` without following links, and every name looked at relative to its directory's
    descriptor: a directory swapped for a link while the walk runs is not read through.
    """
    packed = Packed()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for top, dirs, files, dir_fd in os.fwalk(source, follow_symlinks=False):
            here = Path(top).relative_to(source)
            dirs.sort()
            for name in sorted([*dirs, *files]):
                _add(zf, dir_fd, name, (here / name).as_posix(), packed)
    return packed


def _add(zf: zipfile.ZipFile, dir_fd: int, name: str, arcname: str, packed: Packed) -> None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            zf.writestr(_info(arcname, st), os.readlink(name, dir_fd=dir_fd))
            packed.links += 1
            return
    except FileNotFoundError:
        return  # gone since the directory was listed
    if stat.S_ISDIR(st.st_mode):
        zf.writestr(_info(arcname + "/", st), b"")
    elif stat.S_ISREG(st.st_mode) and _copy_file(zf, dir_fd, name, arcname):
        packed.files += 1
    else:
        packed.skipped.append(arcname)


def _copy_file(zf: zipfile.ZipFile, dir_fd: int, name: str, arcname: str) -> bool:
    """Stream a regular file into the archive; False when it is not one any more."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return False  # a link (ELOOP) or a special file swapped in since the look
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        info = _info(arcname, st)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=st.st_size >= zipfile.ZIP64_LIMIT) as out:
            while chunk := f.read(_CHUNK):
                out.write(chunk)
    return True


def _info(arcname: str, st: os.stat_result) -> zipfile.ZipInfo:
    """An entry named `arcname` with the file's type, permissions and (zip-dated) mtime."""
    mtime = time.localtime(min(max(st.st_mtime, _ZIP_FIRST), _ZIP_LAST))
    info = zipfile.ZipInfo(arcname, date_time=mtime[:6])
    info.create_system = 3  # Unix: the external attributes' high word is st_mode
    info.external_attr = (st.st_mode & 0xFFFF) << 16
    if stat.S_ISDIR(st.st_mode):
        info.external_attr |= 0x10  # MS-DOS directory flag
    return info
