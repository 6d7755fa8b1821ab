"""Multipart uploads as the SDK speaks them (spec §5.4): parts assembled in place, hashed as
they arrive, filed as one ordinary blob candidate at `complete`.

An upload is one file, `DIR/blobs/multipart/<upload id>`. Part n is written straight at its
offset, `(n - 1) * part size`: every part but the last has the same size, learnt from the
first such part to arrive (and checked against each other one), so there is never a second
copy to concatenate. One running sha384 advances over the contiguous prefix of parts received:
the part it needs next is hashed as it is written (in a worker thread beside the one that
writes), and a part that arrived early (a pool of 4 sends 4 at once) is hashed from the page
cache in the background once the gap before it fills; a part is answered as soon as it is
written. At `complete` the file is therefore hashed already (or nearly), and becomes a
candidate (blobs.py) with that hasher's state: it is verified at promotion like any single
PUT, and never served until a revision names its salt.

Acknowledged parts are rows (`store/multipart.py`), written once the part's bytes are in the
file (the page cache: `complete` syncs the whole file once), so they survive a restart of
the registry (the running hash does not: it starts again from part 1, reading the file). A
part sent again replaces the earlier copy: its row goes first, so a copy cut short is
missing, never acknowledged with other bytes. An upload no part reached for `ttl` seconds is
swept (at start and whenever an upload is begun).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import structlog

from agent.localregistry.blobs import MAX_CANDIDATES, BlobStore
from agent.localregistry.db import transaction
from agent.localregistry.errors import (
    BadRequest,
    Conflict,
    LengthRequired,
    NotFound,
    PayloadTooLarge,
)
from agent.localregistry.store import multipart as index
from agent.localregistry.wire import now

log = structlog.get_logger("agent.localregistry")

MAX_PARTS = 10_000  # as S3 (spec §5.6)
# A last part that arrives before any other waits this long for the part size to be known.
SIZE_WAIT = 60.0
_WRITE = 4 * 2**20  # bytes gathered before one pwrite
_READ = 8 * 2**20
_COMPLETED_KEPT = 1024
_IOV_MAX = 1024  # buffers one pwritev takes (Linux)


@dataclass(frozen=True)
class Part:
    """A part named at `complete`."""

    number: int
    etag: str


@dataclass
class _Live:
    """An upload's state in memory: the running hash over its first `hashed` parts."""

    acked: dict[int, int]  # part number -> size, of the parts acknowledged
    hasher: Any = field(default_factory=hashlib.sha384)
    hashed: int = 0
    epoch: int = 0  # bumped whenever the hash starts again (a hashed part sent again)
    writing: set[int] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sized: asyncio.Event = field(default_factory=asyncio.Event)
    hashing: asyncio.Future[None] | None = None  # the background advance, while it runs

    def restart_hash(self) -> None:
        self.hasher, self.hashed, self.epoch = hashlib.sha384(), 0, self.epoch + 1


class MultipartUploads:
    """The multipart uploads in progress of one registry."""

    def __init__(self, blobs: BlobStore, conn: sqlite3.Connection, *, ttl: float) -> None:
        self._blobs = blobs
        self._conn = conn
        self.ttl = ttl
        self._dir = blobs.root / "multipart"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._live: dict[str, _Live] = {}
        # Uploads completed lately: a complete sent again (its answer lost) is answered again.
        self._completed: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.sweep()

    def _file(self, upload_id: str) -> Path:
        return self._dir / upload_id

    # -- housekeeping -------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Drop the uploads idle past the TTL (none with a part arriving), files without a
        row and rows without a file; the ids of the uploads dropped."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=self.ttl)).isoformat()
        idle = [
            u
            for u in index.idle_since(self._conn, cutoff)
            if not (u in self._live and self._live[u].writing)
        ]
        rows = index.upload_ids(self._conn)
        files = {p.name for p in self._dir.iterdir()}
        gone = idle + sorted(rows - files)
        for upload_id in gone:
            self._drop(upload_id)
        for name in files - rows:
            self._file(name).unlink(missing_ok=True)
        return gone

    def _drop(self, upload_id: str) -> None:
        with transaction(self._conn) as c:
            index.drop_upload(c, upload_id)
        self._file(upload_id).unlink(missing_ok=True)
        self._live.pop(upload_id, None)

    def _row(self, upload_id: str, sha: str) -> sqlite3.Row:
        row = index.upload(self._conn, upload_id)
        if row is None or row["sha"] != sha:
            msg = f"no multipart upload {upload_id} of sha {sha} is in progress"
            raise NotFound(msg)
        return row

    def _state(self, upload_id: str) -> _Live:
        live = self._live.get(upload_id)
        if live is None:  # first use since the registry started
            acked = {n: int(r["size"]) for n, r in index.parts(self._conn, upload_id).items()}
            live = self._live[upload_id] = _Live(acked)
            row = index.upload(self._conn, upload_id)
            if row is not None and row["part_size"] is not None:
                live.sized.set()
        return live

    # -- begin --------------------------------------------------------------------------------

    def begin(self, base_url: str, sha: str, num_parts: int) -> dict[str, Any]:
        """A new upload of `num_parts` parts to `sha`: `{upload_id, upload_urls}`."""
        self.sweep()
        if self._blobs.exists(sha):
            msg = f"Sha already exists: {sha}"
            raise Conflict(msg)
        if not 1 <= num_parts <= MAX_PARTS:
            msg = f"num_parts must be 1 to {MAX_PARTS}, not {num_parts}"
            raise BadRequest(msg)
        if index.open_for(self._conn, sha) >= MAX_CANDIDATES:
            msg = f"sha {sha} already has {MAX_CANDIDATES} multipart uploads in progress"
            raise Conflict(msg)
        upload_id = uuid.uuid4().hex
        self._file(upload_id).touch(mode=0o600, exist_ok=False)  # the file before its row
        with transaction(self._conn) as c:
            index.add_upload(c, upload_id, sha, num_parts, now())
        urls = {str(n): self._url(base_url, sha, upload_id, n) for n in range(1, num_parts + 1)}
        return {"upload_id": upload_id, "upload_urls": urls}

    def _url(self, base_url: str, sha: str, upload_id: str, number: int) -> dict[str, str]:
        expires = int(time.time()) + self._blobs.url_ttl
        signature = self._blobs.sign(part_op(upload_id, number), sha, expires)
        query = urlencode({"expires": expires, "signature": signature})
        expiry = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
        return {
            "url": f"{base_url}/blobs/{sha}/parts/{upload_id}/{number}?{query}",
            "expires": expiry,
        }

    # -- parts --------------------------------------------------------------------------------

    async def receive(
        self,
        sha: str,
        upload_id: str,
        number: int,
        chunks: AsyncIterator[bytes],
        declared: int | None,
    ) -> str:
        """Write part `number` at its offset and acknowledge it; returns its ETag."""
        row = self._row(upload_id, sha)
        if not 1 <= number <= row["num_parts"]:
            msg = f"part {number} is not among parts 1 to {row['num_parts']} of this upload"
            raise BadRequest(msg)
        if declared is None:
            raise LengthRequired
        live = self._state(upload_id)
        if row["part_size"] is None and number == row["num_parts"] > 1:
            try:  # a last part first: its offset is known once another part tells the size
                async with asyncio.timeout(SIZE_WAIT):
                    await live.sized.wait()
            except TimeoutError:
                msg = "the part size is learnt from a part that is not the last: send one first"
                raise Conflict(msg) from None
        row = self._row(upload_id, sha)  # canceled meanwhile?
        told = row["part_size"] is None
        part_size = self._claim(row, number, declared, live)
        try:
            etag = await self._land(upload_id, number, part_size, chunks, declared, told, live)
        finally:
            live.writing.discard(number)
        self._hash_behind(upload_id, live, part_size)
        return etag

    async def _land(
        self,
        upload_id: str,
        number: int,
        part_size: int,
        chunks: AsyncIterator[bytes],
        declared: int,
        told: bool,
        live: _Live,
    ) -> str:
        """Write the part and acknowledge it; hashed as it is written when it is the next
        the running hash needs (else later, from the page cache)."""
        if live.hashed != number - 1 or live.lock.locked():
            size = await self._write(upload_id, number, part_size, chunks, declared, told, None)
            return self._acknowledge(upload_id, number, size, declared, live)
        async with live.lock:  # free: taken without waiting
            epoch, hasher = live.epoch, live.hasher.copy()  # the copy: a part cut short
            size = await self._write(upload_id, number, part_size, chunks, declared, told, hasher)
            etag = self._acknowledge(upload_id, number, size, declared, live)
            if live.epoch == epoch and live.hashed == number - 1:
                live.hasher = hasher
                live.hashed = number
            return etag

    def _acknowledge(
        self, upload_id: str, number: int, size: int, declared: int, live: _Live
    ) -> str:
        if size != declared:
            msg = "part ended before Content-Length bytes arrived"
            raise BadRequest(msg)
        if index.upload(self._conn, upload_id) is None:
            msg = f"multipart upload {upload_id} was canceled or completed meanwhile"
            raise NotFound(msg)
        etag = uuid.uuid4().hex
        with transaction(self._conn) as c:
            index.add_part(c, upload_id, number, size, etag, now())
        live.acked[number] = size
        return etag

    def _hash_behind(self, upload_id: str, live: _Live, part_size: int) -> None:
        """Advance the running hash in the background: the part is answered at once, so the
        client sends the next while this one is hashed (complete waits for it)."""
        if live.hashing is None or live.hashing.done():
            live.hashing = asyncio.ensure_future(self._advance_quietly(upload_id, live, part_size))

    async def _advance_quietly(self, upload_id: str, live: _Live, part_size: int) -> None:
        try:
            await self._advance(upload_id, live, part_size)
        except (OSError, BadRequest) as e:  # the file changed under us: complete says so
            log.warning("registry.multipart_hash_failed", upload_id=upload_id, error=str(e))

    async def close(self) -> None:
        """Stop the background hashing (the registry is shutting down)."""
        running = [live.hashing for live in self._live.values() if live.hashing is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _claim(self, row: sqlite3.Row, number: int, declared: int, live: _Live) -> int:
        """Take part `number` for writing (synchronous, so a complete or cancel sees it);
        its earlier copy is forgotten first. Returns the part size."""
        part_size = self._part_size(row, number, declared, live)
        offset = (number - 1) * part_size
        if offset + declared > self._blobs.max_blob_size:
            msg = f"upload exceeds the limit of {self._blobs.max_blob_size} bytes"
            raise PayloadTooLarge(msg)
        if number in live.writing:
            msg = f"part {number} is already being uploaded"
            raise Conflict(msg)
        if live.acked.pop(number, None) is not None:
            with transaction(self._conn) as c:  # replaced: never acknowledged half-written
                index.drop_part(c, row["id"], number)
            if number <= live.hashed + 1:
                live.restart_hash()
        live.writing.add(number)
        return part_size

    async def _write(
        self,
        upload_id: str,
        number: int,
        part_size: int,
        chunks: AsyncIterator[bytes],
        declared: int,
        told: bool,
        hasher: Any,
    ) -> int:
        """Write the part's bytes at their offset (in the page cache: `complete` syncs the
        whole file once; a part a power loss took is caught by the hash at promotion), fed to
        `hasher` too unless it is None."""
        fd = os.open(self._file(upload_id), os.O_WRONLY)
        try:
            if told:  # this part told the size: reserve the whole upload's space
                total = index.upload(self._conn, upload_id)
                parts = int(total["num_parts"]) if total is not None else number
                await asyncio.to_thread(_preallocate, fd, parts * part_size)
            size = await _write_at(fd, (number - 1) * part_size, chunks, declared, hasher)
        finally:
            os.close(fd)
        return size

    def _part_size(self, row: sqlite3.Row, number: int, declared: int, live: _Live) -> int:
        """The upload's part size, recorded now if this part tells it; refuses a part whose
        size does not fit."""
        last = number == row["num_parts"]
        part_size: int | None = row["part_size"]
        if part_size is None and (not last or number == 1):
            if declared == 0:
                msg = f"part {number} is empty"
                raise BadRequest(msg)
            with transaction(self._conn) as c:
                index.set_part_size(c, row["id"], declared)
            live.sized.set()
            return declared
        if part_size is None:  # unreachable: a last part waits for the size
            msg = "the part size is not known yet"
            raise Conflict(msg)
        if not last and declared != part_size:
            msg = (
                f"part {number} has {declared} bytes; every part but the last must have "
                f"{part_size} bytes (the size of the first part received)"
            )
            raise BadRequest(msg)
        if last and not 0 < declared <= part_size:
            msg = f"the last part has {declared} bytes; it must have 1 to {part_size}"
            raise BadRequest(msg)
        return part_size

    async def _advance(self, upload_id: str, live: _Live, part_size: int) -> None:
        """Hash the parts that now follow the hashed prefix without a gap."""
        path = self._file(upload_id)
        async with live.lock:
            while live.hashed + 1 in live.acked and upload_id in self._live:
                number, epoch, hasher = live.hashed + 1, live.epoch, live.hasher
                size = live.acked[number]
                try:
                    await asyncio.to_thread(
                        _hash_range, path, hasher, (number - 1) * part_size, size
                    )
                except FileNotFoundError:
                    return  # canceled meanwhile
                if live.epoch == epoch and live.acked.get(number) == size:
                    live.hashed = number
                elif live.epoch == epoch:  # sent again while being read
                    live.restart_hash()

    # -- complete, cancel ---------------------------------------------------------------------

    async def complete(self, sha: str, upload_id: str, parts: Iterable[Part]) -> int:
        """Check the parts named against those received, and file the whole as a candidate
        for `sha`; returns its size. Completing it again (a lost answer) answers the same."""
        if self._completed.get(upload_id, ("", 0))[0] == sha:
            return self._completed[upload_id][1]
        row = self._row(upload_id, sha)
        total = int(row["num_parts"])
        named = list(parts)
        numbers = [p.number for p in named]
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        if twice:
            msg = f"completed_parts lists part(s) {_few(twice)} more than once"
            raise BadRequest(msg)
        outside = sorted(n for n in numbers if not 1 <= n <= total)
        if outside:
            msg = f"completed_parts names part(s) {_few(outside)}; this upload has 1 to {total}"
            raise BadRequest(msg)
        unlisted = sorted(set(range(1, total + 1)) - set(numbers))
        if unlisted:
            msg = f"completed_parts does not list part(s) {_few(unlisted)}; all {total} are needed"
            raise BadRequest(msg)
        received = index.parts(self._conn, upload_id)
        never = sorted(n for n in numbers if n not in received)
        if never:
            msg = f"part(s) {_few(never)} never arrived (or were cut short); upload them again"
            raise BadRequest(msg)
        wrong = sorted(p.number for p in named if p.etag.strip('"') != received[p.number]["etag"])
        if wrong:
            msg = f"the ETag of part(s) {_few(wrong)} is not that of the copy received"
            raise BadRequest(msg)
        live = self._state(upload_id)
        part_size = int(row["part_size"])
        size = (total - 1) * part_size + int(received[total]["size"])
        await self._advance(upload_id, live, part_size)
        path = self._file(upload_id)
        await asyncio.to_thread(_truncate, path, size)
        # From this check to the end no await: nothing can change the parts meanwhile.
        if live.writing or live.hashed != total or index.upload(self._conn, upload_id) is None:
            msg = "a part is being uploaded again; complete once it has been acknowledged"
            raise Conflict(msg)
        try:
            self._blobs.refuse_if_verified(sha)
            self._blobs.add_candidate(sha, path, size, live.hasher)
        finally:
            self._drop(upload_id)  # the file is a candidate now, or of no use
        self._completed[upload_id] = (sha, size)
        while len(self._completed) > _COMPLETED_KEPT:
            self._completed.popitem(last=False)
        return size

    def cancel(self, sha: str, upload_id: str) -> None:
        """Drop the upload and every part received."""
        self._row(upload_id, sha)
        self._drop(upload_id)


def part_op(upload_id: str, number: int) -> str:
    """What a part URL's signature allows: PUT of this part of this upload."""
    return f"part {upload_id} {number}"


def _few(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _preallocate(fd: int, size: int) -> None:
    """Reserve the upload's space at once (a full disk says so at the first part)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            msg = f"not enough disk space for an upload of up to {size} bytes"
            raise PayloadTooLarge(msg) from None
        # EOPNOTSUPP and the like: the file grows as parts arrive


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_range(path: Path, hasher: Any, offset: int, size: int) -> None:
    """Feed `size` bytes of `path` from `offset` to `hasher` (from the page cache, mostly)."""
    buf = bytearray(min(_READ, max(size, 1)))
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        f.seek(offset)
        left = size
        while left > 0:
            got = f.readinto(view[: min(left, len(buf))])
            if not got:
                msg = f"{path.name}: ended {left} bytes early"
                raise BadRequest(msg)
            hasher.update(view[:got])
            left -= got


async def _write_at(
    fd: int, offset: int, chunks: AsyncIterator[bytes], limit: int, hasher: Any = None
) -> int:
    """Write a stream at `offset` of `fd` (and feed it to `hasher` unless None): one worker
    thread writes a batch and another hashes it while the next is received, so the socket,
    the disk and the hash (the slowest) overlap; returns the byte count (refused past
    `limit`)."""
    size, batch, gathered = 0, list[bytes](), 0
    pending: list[asyncio.Future[None]] = []  # the last batch's write (and hash)

    async def settle() -> None:
        for future in pending:
            await future
        pending.clear()

    def start(batch: list[bytes], at: int) -> None:
        pending.append(asyncio.ensure_future(asyncio.to_thread(_pwrite, fd, batch, at)))
        if hasher is not None:
            pending.append(asyncio.ensure_future(asyncio.to_thread(_feed, hasher, batch)))

    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                msg = "part has more bytes than its Content-Length"
                raise BadRequest(msg)
            batch.append(chunk)
            gathered += len(chunk)
            if gathered >= _WRITE or len(batch) >= _IOV_MAX:
                await settle()
                start(batch, offset + size - gathered)
                batch, gathered = [], 0
        await settle()
        if batch:
            start(batch, offset + size - gathered)
            await settle()
    finally:
        for future in pending:  # never leave a worker writing into a closed descriptor
            with contextlib.suppress(Exception):
                await asyncio.shield(future)
    return size


def _feed(hasher: Any, batch: list[bytes]) -> None:
    for chunk in batch:
        hasher.update(chunk)


def _pwrite(fd: int, batch: list[bytes], at: int) -> None:
    """Write `batch` at `at` of `fd` with one system call, mostly."""
    done = os.pwritev(fd, batch, at)
    if done == sum(map(len, batch)):
        return
    rest, at = memoryview(b"".join(batch))[done:], at + done  # short: rare for a file
    while rest:
        done = os.pwrite(fd, rest, at)
        rest, at = rest[done:], at + done
