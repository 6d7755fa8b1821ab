"""Downloading a blob to disk so that it survives faults: resume with Range, verify the address.

A download streams into a partial file in batches of 8 MiB, one worker thread writing them
and another hashing them while the event loop receives the next (the network, the disk and
the hash overlap; at most DEPTH batches in flight), so memory stays flat and the address
`sha384(content ‖ salt)` is known the moment the last byte lands. A connection cut mid-body
is resumed with `Range: bytes=<have>-` from where it stopped; the hash carries on over the
resumed bytes (a partial file left by an earlier process is hashed from disk first). A
storage that ignores Range (200, the whole body) is followed from zero, truncating what was
there, never appending a second copy; a 206 that starts elsewhere than asked is not trusted
(the next attempt starts from zero). A 403 means the presigned URL expired: a fresh one is
asked for. A full disk removes the partial file and raises DiskFull.

Retries: an attempt that brought new bytes (past the most ever held) resumes at once and
resets the count; attempts that did not are bounded by `retries` and by `budget` seconds since
the last progress, with jittered exponential backoff between them. The decisions are pure
functions (`decide`, `Attempts`), the I/O is `fetch`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import hashlib
import math
import os
import random
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from agent.registry.errors import (
    BadRange,
    DiskFull,
    IntegrityError,
    RegistryError,
    RegistryUnavailable,
    UrlExpired,
    redact_url,
    rejected,
)

log = structlog.get_logger(__name__)

Progress = Callable[[int], None]
UrlSource = Callable[[], Awaitable[str]]

# A batch handed to the worker thread: big enough that a thread hop per batch costs nothing
# next to the hash, small enough to keep memory flat (two batches in flight at most).
BATCH = 8 * 1024 * 1024
DEPTH = 4  # batches in flight at most (written or hashed, or waiting to be)
_READ_BUFSIZE = 1024 * 1024  # aiohttp buffers up to twice this while a batch is written
# However much progress each attempt makes, a storage that cuts every few bytes is not
# followed for ever.
MAX_ATTEMPTS = 1000
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=300)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class Step(Enum):
    """What to do with a response to a GET that asked for bytes from `have` on."""

    APPEND = "append"  # 206 from where we stopped: add the body to what is there
    RESTART = "restart"  # 200: the whole body; truncate what is there and start from zero
    BAD_RANGE = "bad_range"  # 206/416 for something not asked: drop what is there, start over
    EXPIRED = "expired"  # 403: the presigned URL is no longer good; ask for a fresh one
    REJECTED = "rejected"  # any other status: the storage refused


def content_range_start(header: str | None) -> int | None:
    """The first byte of a `Content-Range: bytes a-b/n` header, or None when malformed."""
    if header is None:
        return None
    match = _CONTENT_RANGE.match(header)
    if match is None or int(match.group(2)) < int(match.group(1)):
        return None
    return int(match.group(1))


def decide(status: int, content_range: str | None, have: int) -> Step:
    """The step for a response's status and Content-Range, having asked from byte `have` (pure).

    A request from zero carries no Range header, so a 206 for it is unexpected too.
    """
    if status == 200:
        return Step.RESTART
    if status == 206:
        start = content_range_start(content_range)
        return Step.APPEND if have > 0 and start == have else Step.BAD_RANGE
    if status == 416:
        return Step.BAD_RANGE
    if status == 403:
        return Step.EXPIRED
    return Step.REJECTED


def range_header(have: int) -> dict[str, str]:
    """The request headers to resume from byte `have` (none from zero) (pure)."""
    return {"Range": f"bytes={have}-"} if have > 0 else {}


@dataclass
class Attempts:
    """Bounded retries that forgive an attempt that made progress (pure: time is passed in)."""

    retries: int
    budget: float
    started: float
    failures: int = 0
    total: int = 0
    best: int = 0  # the most bytes ever held
    _since: float = field(init=False)

    def __post_init__(self) -> None:
        self._since = self.started

    def after_failure(self, have: int, now: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up, once an attempt that
        left `have` bytes in place failed with a retryable error."""
        self.total += 1
        if self.total >= MAX_ATTEMPTS:
            return None
        if have > self.best:  # progress: resume at once, and count afresh
            self.best, self.failures, self._since = have, 0, now
            return 0.0
        self.failures += 1
        if self.failures > self.retries:
            return None
        delay = min(10.0, 0.1 * 2 ** (self.failures - 1)) + random.uniform(0, 0.2)
        return None if now + delay - self._since > self.budget else delay


@dataclass
class Partial:
    """A partial download: its file, how many bytes it holds, and the hash over them."""

    path: Path
    have: int = 0
    hasher: Any = field(default_factory=hashlib.sha384)
    foreign: bool = False  # resumed from bytes an earlier process left (not hashed as received)

    @classmethod
    def adopt(cls, path: Path) -> Partial:
        """Pick up what an earlier process left at `path`, hashing it from disk (blocking)."""
        partial = cls(path)
        try:
            with path.open("rb") as f:
                while chunk := f.read(BATCH):
                    partial.hasher.update(chunk)
                    partial.have += len(chunk)
        except FileNotFoundError:
            return partial
        partial.foreign = partial.have > 0
        return partial

    def reset(self) -> None:
        """Back to zero bytes: truncate the file and the hash."""
        self.have, self.hasher, self.foreign = 0, hashlib.sha384(), False
        with self.path.open("wb"):
            pass

    def write(self, fd: int, data: bytes) -> None:
        """Append `data` to the file (in a worker thread: os.write releases the GIL)."""
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        self.have += len(data)

    def hash(self, data: bytes) -> None:
        """Hash `data` (in another worker thread, beside the write: hashlib releases the GIL
        too, so the disk and the hash overlap instead of taking turns)."""
        self.hasher.update(data)

    def matches(self, sha: str, salt: str) -> bool:
        h = self.hasher.copy()
        h.update(salt.encode("utf-8"))
        return bool(h.hexdigest() == sha)


class _Writer:
    """Two lanes of worker-thread work, one writing batches and one hashing them, each in
    order, while the event loop receives the next batch: the network, the disk and the hash
    overlap, and a write held up by the disk (dirty-page throttling) does not hold up the
    hash, nor the other way round. At most DEPTH batches are in flight (memory stays flat)."""

    def __init__(self, fd: int, partial: Partial, progress: Progress | None) -> None:
        self.fd, self.partial, self.progress = fd, partial, progress
        self.write: asyncio.Future[None] | None = None  # the last batch's, in each lane
        self.hash: asyncio.Future[None] | None = None
        self.flight: collections.deque[asyncio.Future[Any]] = collections.deque()

    async def submit(self, batch: list[bytes]) -> None:
        # One buffer, so each thread makes one call that releases the GIL for the whole
        # batch: with a call per network chunk (tens of KiB) the hash thread queued for the
        # GIL behind the event loop at every chunk and ran at a third of its speed.
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        while len(self.flight) >= DEPTH:
            await self.flight.popleft()
        self.write = asyncio.ensure_future(_after(self.write, self.partial.write, self.fd, data))
        self.hash = asyncio.ensure_future(_after(self.hash, self.partial.hash, data))
        self.flight.append(asyncio.gather(self.write, self.hash))
        if self.progress is not None:
            self.progress(len(data))

    async def drain(self) -> None:
        while self.flight:
            await self.flight.popleft()

    def busy(self) -> list[asyncio.Future[Any]]:
        return [f for f in (self.write, self.hash) if f is not None and not f.done()]


async def _after(previous: asyncio.Future[None] | None, work: Any, *args: Any) -> None:
    """`work(*args)` in a worker thread once `previous` (the same lane's last) is done."""
    if previous is not None:
        await previous
    await asyncio.to_thread(work, *args)


async def _receive(
    resp: aiohttp.ClientResponse, partial: Partial, progress: Progress | None
) -> None:
    """Append the body to `partial` in batches of about BATCH bytes (aiohttp's chunks, not
    copied). What arrived before a cut is written too: the resume starts after it."""
    fd = os.open(partial.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    writer = _Writer(fd, partial, progress)
    batch: list[bytes] = []
    held = 0
    try:
        try:
            async for chunk in resp.content.iter_any():
                batch.append(chunk)
                held += len(chunk)
                if held >= BATCH:
                    await writer.submit(batch)
                    batch, held = [], 0
        except (aiohttp.ClientError, TimeoutError):
            if batch:
                await writer.submit(batch)
            raise
        if batch:
            await writer.submit(batch)
        await writer.drain()
    finally:
        # Never close the file under a write still running in a worker (cancelled or not).
        for work in [*writer.flight, *writer.busy()]:
            with contextlib.suppress(Exception):  # the first error is on its way up already
                await asyncio.shield(work)
        os.close(fd)


@dataclass
class Source:
    """Where the bytes come from: a session, TLS settings, and a presigned URL (renewable)."""

    session: aiohttp.ClientSession
    url_for: UrlSource
    ssl: Any = None
    url: str | None = None

    async def current(self) -> str:
        if self.url is None:
            self.url = await self.url_for()
        return self.url


async def _attempt(source: Source, partial: Partial, progress: Progress | None) -> None:
    """One GET from `partial.have` on; raises a RegistryError when it did not end the body."""
    url = await source.current()
    shown = redact_url(url)
    try:
        async with source.session.get(
            url,
            headers=range_header(partial.have),
            timeout=_TIMEOUT,
            ssl=source.ssl,
            read_bufsize=_READ_BUFSIZE,
        ) as resp:
            step = decide(resp.status, resp.headers.get("Content-Range"), partial.have)
            if step is Step.EXPIRED:
                source.url = None
                msg = f"GET {shown} -> 403: the download URL expired; asking for a new one"
                raise UrlExpired(msg)
            if step is Step.REJECTED:
                error = rejected("GET", shown, resp.status, (await resp.text())[:500])
                raise error
            if step is Step.BAD_RANGE:
                got = resp.headers.get("Content-Range", "none")
                msg = f"GET {shown}: asked from byte {partial.have}, answered {resp.status} {got}"
                partial.reset()
                raise BadRange(msg)
            if step is Step.RESTART and partial.have > 0:
                log.warning("download.range_ignored", url=shown, had=partial.have)
                partial.reset()
            await _receive(resp, partial, progress)
    except (aiohttp.ClientError, TimeoutError) as e:
        msg = f"GET {shown} failed after {partial.have} bytes: {type(e).__name__}"
        raise RegistryUnavailable(msg) from None


def _disk_full(partial: Partial, size: int | None) -> DiskFull:
    partial.path.unlink(missing_ok=True)
    try:
        free = shutil.disk_usage(partial.path.parent).free
    except OSError:
        free = 0
    return DiskFull(str(partial.path), size, free)


async def fetch(
    source: Source,
    dest: Path,
    sha: str,
    salt: str,
    *,
    size: int | None = None,
    progress: Progress | None = None,
    retries: int = 0,
    budget: float = math.inf,
    resume: bool = False,
) -> int:
    """Download into `dest`, verified against `sha`; returns the size.

    `resume`: pick up bytes already at `dest` (left by an earlier process); otherwise `dest`
    starts empty. On any failure but a retryable one while attempts are left, the partial
    file is removed (DiskFull, IntegrityError, a refusal) or kept for a later resume (the
    registry away): the caller decides, see `Attempts`.
    """
    partial = await asyncio.to_thread(Partial.adopt, dest) if resume else Partial(dest)
    if not resume:
        partial.reset()
    attempts = Attempts(retries, budget, time.monotonic(), best=partial.have)
    while True:
        try:
            if size is None or partial.have < size:
                await _written(source, partial, size, progress)
        except RegistryError as e:
            await _wait_or_raise(e, attempts, partial)
            continue
        if partial.matches(sha, salt):
            return partial.have
        if not partial.foreign:
            dest.unlink(missing_ok=True)
            msg = f"downloaded bytes do not match sha {sha[:16]}..."
            raise IntegrityError(msg)
        # What an earlier process left may be what is wrong: once more, from zero.
        log.warning("download.partial_discarded", have=partial.have)
        partial.reset()


async def _written(
    source: Source, partial: Partial, size: int | None, progress: Progress | None
) -> None:
    """One attempt, with a local write failure made a RegistryError (the file removed)."""
    try:
        await _attempt(source, partial, progress)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_full(partial, size) from None
        partial.path.unlink(missing_ok=True)
        msg = f"writing {partial.path} failed: {e.strerror or e}"
        raise RegistryError(msg) from None


async def _wait_or_raise(error: RegistryError, attempts: Attempts, partial: Partial) -> None:
    """Back off before the next attempt, or raise `error` when none is left (a final error
    removes the partial file; an outage keeps it for a later resume)."""
    if not error.retryable:
        partial.path.unlink(missing_ok=True)
        raise error
    delay = attempts.after_failure(partial.have, time.monotonic())
    if delay is None:
        raise error
    log.warning("download.resuming", error=str(error), have=partial.have, wait=round(delay, 2))
    await asyncio.sleep(delay)  # backoff between attempts, not a synchronisation
