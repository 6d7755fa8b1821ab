"""A module's `module_checksum`: the SHA-256 of its files, defined once (docs/modules.md).

The digest is SHA-256 over one line per file, sorted by path (as UTF-8 bytes):
`<relative/posix/path>\\0<sha256 hex of the content>\\n`, lowercase hex. Counted: every regular
file and every symbolic link under the module directory, at any depth, except the top-level
`module_manifest.json` (it holds the checksum) and anything under a name starting with `.`
(`.git`, `.venv`, `.DS_Store`) or named `__pycache__` (Python writes those when a module runs,
which must not change its checksum). A link is not followed: its "content" is its target as
written (`readlink`), so a link cannot pull a file from outside the module into the digest.
Other kinds (FIFOs, sockets, devices) and empty directories are not counted.

Every file is read at each scan, so a module with gigabytes of data pays that at each agent
start (about 1 s per GB); such a module can leave `module_checksum` empty.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

MANIFEST_FILE = "module_manifest.json"
_SKIPPED_DIRS = frozenset({"__pycache__"})
_CHUNK = 1024 * 1024


def module_checksum(directory: Path) -> str:
    """The checksum of the module in `directory` (lowercase hex), as defined above."""
    digest = hashlib.sha256()
    for relative, content in sorted(_entries(directory)):
        digest.update(relative + b"\0" + content.encode() + b"\n")
    return digest.hexdigest()


def _entries(directory: Path) -> list[tuple[bytes, str]]:
    """(relative path as bytes, sha256 hex of its content) for each counted file."""
    found: list[tuple[bytes, str]] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        here = Path(root)
        # A link to a directory is listed in `dirs` and not walked: count it as a link.
        walked = [d for d in dirs if not _skipped(d)]
        links = [d for d in walked if (here / d).is_symlink()]
        dirs[:] = [d for d in walked if d not in links]
        for name in [*files, *links]:
            path = here / name
            if _skipped(name) or (here == directory and name == MANIFEST_FILE):
                continue
            content = _content_hash(path)
            if content is not None:
                relative = path.relative_to(directory).as_posix()
                found.append((os.fsencode(relative), content))
    return found


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIPPED_DIRS


def _content_hash(path: Path) -> str | None:
    """The sha256 hex of a regular file's bytes or of a link's target; None for other kinds."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return hashlib.sha256(os.fsencode(path.readlink())).hexdigest()
    if not stat.S_ISREG(mode):
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
