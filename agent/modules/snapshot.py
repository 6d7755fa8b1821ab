"""Pinned copies of installed modules: a job runs the files it was validated with.

The agent never runs a tool from `modules_path` itself. Each module it loads is first copied
into the state path (`<state_path>/modules/<directory>-<fingerprint>/`), and the copy is what
is validated, served and run. Whatever then happens under `modules_path` (a new version copied
over the old one, a file edited, the module removed) cannot change a job that is already
running: it keeps the copy it was validated with, and the next job gets the new one.

The fingerprint is taken from what `stat` says of every entry (path, kind, size, mode,
modification time, a link's target), not from the contents: it costs a directory walk, not a
read of every byte. The copy is checked against a second fingerprint of the source taken after
it: a module still being copied in (its files still growing) fails that check (`Unsettled`)
and is loaded again on the next change. Links are copied as links, never followed, so a loop
or a link to a large tree costs nothing; a relative link that leaves the module no longer
resolves in the copy (say so in the module's docs: ship files, not links out of the module).

Copies that nothing serves are removed by `prune`, which the agent calls only while no job
runs, so a running tool never loses a file under it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from pathlib import Path

from agent.errors import AgentError

PINNED = "modules"  # under the state path: the pinned copies
PINNED_MARK = ".istari-pinned"  # written last: a copy without it is incomplete
_TMP_PREFIX = ".pinning-"


class Unsettled(AgentError):
    """The module's files changed while they were being copied: it is still being installed."""


def fingerprint(directory: Path) -> str:
    """A sha256 of what `stat` says of every entry under `directory` (links not followed)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        here = Path(root)
        rel_root = here.relative_to(directory).as_posix()
        for name in sorted(files) + [d for d in dirs if (here / d).is_symlink()]:
            path = here / name
            try:
                st = path.lstat()
                link = str(path.readlink()) if stat.S_ISLNK(st.st_mode) else ""
            except FileNotFoundError:
                digest.update(f"{rel_root}/{name}\0gone\n".encode("utf-8", "surrogateescape"))
                continue
            entry = f"{rel_root}/{name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n"
            digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def pin(source: Path, store: Path) -> Path:
    """The pinned copy of the module at `source` (made now, or found from before).

    Raises Unsettled when the files changed during the copy, OSError when it cannot be made.
    """
    before = fingerprint(source)
    target = store / f"{source.name}-{before[:16]}"
    if (target / PINNED_MARK).is_file():
        return target
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = store / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        shutil.copytree(source, scratch, symlinks=True)
        if fingerprint(source) != before:
            msg = f"{source}: its files changed while being read; it is still being installed"
            raise Unsettled(msg)
        (scratch / PINNED_MARK).write_text(f"{source}\n", encoding="utf-8")
        if target.exists():  # an incomplete copy left by a crash: replace it
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def prune(store: Path, keep: set[Path]) -> list[Path]:
    """Remove every copy under `store` but those in `keep`; what was removed.

    Call only while no job runs (a running tool may still read its copy).
    """
    if not store.is_dir():
        return []
    keep_resolved = {k.resolve() for k in keep}
    removed: list[Path] = []
    for entry in store.iterdir():
        if entry.resolve() in keep_resolved or not entry.is_dir() or entry.is_symlink():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
