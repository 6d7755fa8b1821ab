"""The input cache one agent's jobs share: an address is downloaded once, then copied to each.

`provide` puts an input at a job's path. Under a lock per address (concurrent jobs asking for
the same uncached input wait for the one download), it checks the cached file (its stat stamp,
else a full re-hash; a changed file is dropped with a warning and downloaded again), downloads
into `partial/<sha>` when needed (resumable across restarts), files the verified download, and
gives the job its own copy (agent/cache/materialize.py). An entry is pinned from the check to
the end of its copy, so an eviction made for another address never removes it mid-copy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from agent.cache.materialize import materialize
from agent.cache.store import CacheStore
from agent.concurrently import KeyedLocks

CACHE = "cache"  # under the state path

log = structlog.get_logger(__name__)

# Download into the given path, verified against the address; returns the size.
Download = Callable[[Path, bool], Awaitable[int]]  # (path, resume what is there)


def sync_file(path: Path) -> None:
    """fsync a file by its path (its bytes on disk before an index names it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class InputCache:
    """A CacheStore behind per-address locks and pins."""

    def __init__(self, store: CacheStore) -> None:
        self.store = store
        self._lock = KeyedLocks()  # one per address
        self._pins: Counter[str] = Counter()
        self.hits = 0
        self.misses = 0

    async def provide(
        self, sha: str, salt: str, size: int | None, name: str | None, dest: Path, fetch: Download
    ) -> str:
        """Put the blob at address `sha` at `dest`; returns how: "hit", "download" (and now
        cached) or "uncached" (too big for the cache, or no room)."""
        if not self.store.fits(size):
            await fetch(dest, False)
            return "uncached"
        self._pins[sha] += 1
        try:
            async with self._lock(sha):
                cached = await self._usable(sha)
                if not cached:
                    part = self.store.partial(sha)
                    await fetch(part, True)
                    # Durable before the index names it: a crash must not leave an entry
                    # whose bytes never reached the disk.
                    await asyncio.to_thread(sync_file, part)
                    busy = {s for s, n in self._pins.items() if n > 0}
                    if not self.store.add(sha, salt, name, busy):  # no room: the job's alone
                        await asyncio.to_thread(shutil.move, part, dest)
                        return "uncached"
            how = await asyncio.to_thread(materialize, self.store.path(sha), dest)
            self.store.touch(sha)
        finally:
            self._pins[sha] -= 1
            if self._pins[sha] <= 0:
                del self._pins[sha]
        if cached:
            self.hits += 1
        else:
            self.misses += 1
        log.info("cache.provided", sha=sha[:16], hit=cached, copy=how)
        return "hit" if cached else "download"

    async def _usable(self, sha: str) -> bool:
        """Whether the cached file for `sha` may be served: unchanged by its stamp, or hashed
        again and found to match. A changed file is dropped, never served."""
        holds = self.store.stamp_holds(sha)
        if holds is None:
            return False
        if holds:
            return True
        if await asyncio.to_thread(self.store.rehash_matches, sha):
            self.store.restamp(sha)
            return True
        log.warning("cache.changed_on_disk", sha=sha[:16], action="dropped; downloading again")
        self.store.drop(sha, "changed on disk")
        return False


def open_cache(state_path: Path, limit: int) -> InputCache | None:
    """The agent's input cache at `<state_path>/cache`, checked; None when `limit` is 0."""
    if limit <= 0:
        return None
    return InputCache(CacheStore(state_path / CACHE, limit))
