"""The input cache on disk: files by address under `<state_path>/cache/`, and their index.

Layout: `blobs/<sha>` (a verified download, 0600), `partial/<sha>` (a download under way, or
cut and waiting to be resumed), `index.json` (one entry per blob: its salt, size, file name,
when it was added and last used, and its stat stamp). Directories are 0700. The index is
rewritten atomically (a temporary file, fsync, rename) after every change; at open it is
checked against the directory: an entry without its file, a file without its entry, and a
partial download untouched for a day are dropped.

A blob is served only if it is what was stored: its stat stamp (size, inode, mtime, ctime)
recorded when it was added must still hold, else the file is hashed again in full, and a file
that no longer hashes to its address is dropped (with a warning) and downloaded again (the
check is `CacheStore.verified`; see docs/agent.md, "The input cache"). The bound is
`limit` bytes, kept by evicting the least recently used entries that no job is using.
The store is synchronous and its metadata calls are cheap; the event loop calls them
directly (so an eviction never interleaves with a job pinning what it evicts) and only
hashing runs in a worker thread (agent/cache/shared.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from agent.protocol.content import digest_file, is_sha

log = structlog.get_logger(__name__)

INDEX = "index.json"
PARTIAL_MAX_AGE = 86400.0  # a cut download older than this is not worth resuming


@dataclass(frozen=True)
class Stamp:
    """What the file system says about a file, to notice it was changed without hashing it."""

    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = path.stat()
        return cls(st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class Entry:
    """One cached blob."""

    sha: str
    salt: str
    size: int
    name: str | None
    added: float
    used: float
    stamp: Stamp

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Entry:
        """An entry from the index (KeyError, TypeError or ValueError when malformed)."""
        stamp = Stamp(**doc["stamp"])
        entry = cls(**{**doc, "stamp": stamp})
        if not is_sha(entry.sha) or entry.size != stamp.size:
            msg = f"malformed cache entry {str(doc)[:80]}"
            raise ValueError(msg)
        return entry


def evictions(entries: Iterable[Entry], need: int, limit: int, busy: set[str]) -> list[str] | None:
    """The addresses to evict, least recently used first, so that `need` more bytes fit within
    `limit`; entries in `busy` stay. None when even evicting every other one is not enough
    (pure)."""
    held = list(entries)
    total = sum(e.size for e in held)
    chosen: list[str] = []
    for entry in sorted(held, key=lambda e: (e.used, e.added)):
        if total + need <= limit:
            break
        if entry.sha in busy:
            continue
        chosen.append(entry.sha)
        total -= entry.size
    return chosen if total + need <= limit else None


def read_index(root: Path) -> tuple[dict[str, Entry], int | None]:
    """The entries of the index at `root` and the limit last written with them (read only;
    a missing or unreadable index is empty)."""
    try:
        doc = json.loads((root / INDEX).read_text())
        entries = {}
        for raw in doc.get("entries", []):
            entry = Entry.from_json(raw)
            entries[entry.sha] = entry
        limit = doc.get("limit")
        return entries, (int(limit) if isinstance(limit, int) else None)
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("cache.index_unreadable", path=str(root / INDEX), error=str(e)[:200])
        return {}, None


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


class CacheStore:
    """The cache's files and index at `root`, bounded to `limit` bytes."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root, self.limit = root, limit
        self.blobs, self.partials = root / "blobs", root / "partial"
        for d in (root, self.blobs, self.partials):
            _private_dir(d)
        self.entries, _ = read_index(root)
        self._rebuild()

    # -- layout -------------------------------------------------------------------------------

    def path(self, sha: str) -> Path:
        return self.blobs / sha

    def partial(self, sha: str) -> Path:
        return self.partials / sha

    def total(self) -> int:
        return sum(e.size for e in self.entries.values())

    def fits(self, size: int | None) -> bool:
        """Whether a blob of `size` bytes may be cached at all (a known size within the limit)."""
        return size is not None and self.limit > 0 and size <= self.limit

    # -- start --------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Make the index and the directory agree (the index is what a crash may have missed)."""
        on_disk = {p.name for p in self.blobs.iterdir()}
        for sha in list(self.entries):
            if sha not in on_disk:
                log.warning("cache.entry_without_file", sha=sha[:16])
                del self.entries[sha]
        for name in on_disk - set(self.entries):
            log.warning("cache.file_without_entry", file=name[:16])
            self._unlink(self.blobs / name)
        cutoff = time.time() - PARTIAL_MAX_AGE
        for part in self.partials.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if not is_sha(part.name) or part.stat().st_mtime < cutoff:
                    part.unlink()
        self.save()

    # -- serving ------------------------------------------------------------------------------

    def stamp_holds(self, sha: str) -> bool | None:
        """Whether the entry's file is unchanged by its stat stamp; None when there is no entry
        or no file (the entry is then dropped)."""
        entry = self.entries.get(sha)
        if entry is None:
            return None
        try:
            now = Stamp.of(self.path(sha))
        except FileNotFoundError:
            self.drop(sha, "its file is gone")
            return None
        return now == entry.stamp

    def rehash_matches(self, sha: str) -> bool:
        """Hash the entry's file in full (blocking; for a worker thread)."""
        entry = self.entries.get(sha)
        if entry is None:
            return False
        try:
            return digest_file(self.path(sha), entry.salt).sha == sha
        except FileNotFoundError:
            return False

    def restamp(self, sha: str) -> None:
        """Record the file's current stat stamp (it was hashed again and still matches)."""
        entry = self.entries.get(sha)
        if entry is not None:
            self.entries[sha] = replace(entry, stamp=Stamp.of(self.path(sha)))
            self.save()

    def touch(self, sha: str) -> None:
        """Mark the entry used now (least recently used goes first)."""
        entry = self.entries.get(sha)
        if entry is not None:
            self.entries[sha] = replace(entry, used=time.time())
            self.save()

    # -- adding and removing ------------------------------------------------------------------

    def add(self, sha: str, salt: str, name: str | None, busy: set[str]) -> bool:
        """Move the verified download at `partial(sha)` into the cache, evicting the least
        recently used entries not in `busy` to make room; False (the partial file left in
        place) when it cannot fit."""
        part = self.partial(sha)
        size = part.stat().st_size
        if not self.fits(size):
            return False
        chosen = evictions(self.entries.values(), size, self.limit, busy | {sha})
        if chosen is None:
            return False
        for old in chosen:
            self.drop(old, "least recently used", save=False)
        part.chmod(0o600)
        part.rename(self.path(sha))
        now = time.time()
        self.entries[sha] = Entry(sha, salt, size, name, now, now, Stamp.of(self.path(sha)))
        self.save()
        return True

    def drop(self, sha: str, why: str, *, save: bool = True) -> None:
        """Remove an entry and its file."""
        entry = self.entries.pop(sha, None)
        self._unlink(self.path(sha))
        if entry is not None:
            log.info("cache.dropped", sha=sha[:16], size=entry.size, why=why)
        if save:
            self.save()

    def save(self) -> None:
        """Write the index atomically: a temporary file, fsync, rename."""
        doc = {"limit": self.limit, "entries": [e.as_json() for e in self.entries.values()]}
        tmp = self.root / f".{INDEX}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(doc, separators=(",", ":")).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.root / INDEX)

    @staticmethod
    def _unlink(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clear(root: Path) -> int:
    """Remove every cached file, partial download and the index; returns the bytes freed."""
    freed = 0
    for sub in ("blobs", "partial"):
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                freed += path.lstat().st_size
                path.unlink()
    with contextlib.suppress(FileNotFoundError):
        (root / INDEX).unlink()
    return freed
