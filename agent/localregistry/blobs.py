"""Content-addressed blob storage with HMAC-signed, expiring presigned URLs.

A blob's address is `sha384(content ‖ salt)`, and the salt is only known when a revision names
the blob, so a PUT cannot be checked when it arrives. Every PUT therefore lands as a *candidate*
for its address (`DIR/blobs/pending/<id>` plus a `blob_candidates` row); only a candidate that
hashes to the address under the salt a revision names is promoted to `DIR/blobs/ab/cd/<sha>`,
once, with a `blobs` row that records the salt. Only promoted ("verified") blobs are served,
and a PUT to a verified address is a 409, so a slow or hostile PUT can neither replace verified
content nor squat an address before the honest upload.

The hasher's state after each upload (a few hundred bytes) is kept in memory, so checking a
candidate is O(1) instead of a second pass over the file; after a restart it is re-read.
Crash safety: a candidate's file is in place before its row, a verified file (a hard link of
the candidate, made and synced) before its `blobs` row; whatever a crash leaves half-done is
either swept at start (a file without a row, a row without a file) or is a final file with no
`blobs` row, which is never served and is replaced at the next promotion. The rows' queries
are in `store/blobs.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from agent.concurrently import KeyedLocks
from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, Forbidden, PayloadTooLarge
from agent.localregistry.store import blobs as index
from agent.localregistry.wire import now
from agent.protocol.content import SizeLimitExceeded, iter_file, write_hashed

_STATE_CACHE_SIZE = 4096
# Unverified uploads that may wait for one address. A PUT URL is a capability for 15 minutes;
# without a bound, whoever holds one could fill the disk with distinct uploads to it.
MAX_CANDIDATES = 8
# Candidates no revision named for this long are dropped at start (an agent waits out an
# absent registry, then creates its revision, well within it).
CANDIDATE_DAYS = 7


class BlobStore:
    """Blobs on disk, their index in the database, and presigned URL signing."""

    def __init__(
        self,
        root: Path,
        conn: sqlite3.Connection,
        signing_key: bytes,
        *,
        url_ttl: int = 900,
        max_blob_size: int,
    ) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._pending = root / "pending"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._pending.mkdir(parents=True, exist_ok=True)
        self._conn = conn
        self._key = signing_key
        self.url_ttl = url_ttl
        self.max_blob_size = max_blob_size
        self._states: OrderedDict[str, Any] = OrderedDict()  # candidate id -> hasher
        self._lock = KeyedLocks()  # one per address
        # Leftovers of uploads cut short by a crash are never part of any blob.
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
        self._adopt_unverified()
        self._sweep_candidates()

    def path(self, sha: str) -> Path:
        """Where the verified blob with address `sha` lives."""
        return self.root / sha[:2] / sha[2:4] / sha

    def _candidate(self, candidate_id: str) -> Path:
        return self._pending / candidate_id

    def exists(self, sha: str) -> bool:
        """Whether a verified blob is stored under `sha`."""
        return index.verified(self._conn, sha) is not None

    def size(self, sha: str) -> int | None:
        """The verified blob's size in bytes, or None."""
        row = index.verified(self._conn, sha)
        return None if row is None else int(row["size"])

    def uploaded(self, sha: str) -> bool:
        """Whether anything was uploaded to `sha`: a verified blob or a candidate."""
        return index.uploaded(self._conn, sha)

    # -- start-up ----------------------------------------------------------------------------

    def _adopt_unverified(self) -> None:
        """Blobs an older release stored before any check (no salt) become candidates."""
        for sha in index.unchecked(self._conn):
            candidate_id = uuid.uuid4().hex
            final = self.path(sha)
            try:
                size = final.stat().st_size
                os.link(final, self._candidate(candidate_id))
            except FileNotFoundError:
                size = None
            with transaction(self._conn) as c:
                index.forget(c, sha)
                if size is not None:  # a week from now to be named
                    index.add_candidate(c, candidate_id, sha, size, None, now())
            final.unlink(missing_ok=True)

    def _sweep_candidates(self) -> None:
        """Drop a candidate file without its row, a row without its file (a crash), and
        candidates older than CANDIDATE_DAYS."""
        cutoff = time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - CANDIDATE_DAYS * 86400)
        )
        with transaction(self._conn) as c:
            index.drop_candidates_before(c, cutoff)
        rows = index.candidate_ids(self._conn)
        files = {p.name for p in self._pending.iterdir()}
        for name in files - rows:
            self._candidate(name).unlink(missing_ok=True)
        missing = rows - files
        if missing:
            with transaction(self._conn) as c:
                index.drop_candidates(c, missing)

    # -- presigned URLs -------------------------------------------------------------------

    def sign(self, op: str, sha: str, expires: int) -> str:
        """The HMAC signature allowing `op` on `sha` until `expires` (a Unix time)."""
        message = f"{op}\n{sha}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def presign(self, base_url: str, op: str, sha: str) -> tuple[str, str]:
        """A URL allowing `op` ("get" or "put") on `sha`, and its expiry as ISO-8601."""
        expires = int(time.time()) + self.url_ttl
        query = urlencode({"op": op, "expires": expires, "signature": self.sign(op, sha, expires)})
        expiry = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
        return f"{base_url}/blobs/{sha}?{query}", expiry

    def check_signature(self, op: str, sha: str, expires: str, signature: str) -> None:
        """Refuse a presigned request whose signature is wrong or whose time has passed."""
        try:
            expires_at = int(expires)
        except ValueError:
            msg = "the presigned URL is malformed; ask for a new one"
            raise Forbidden(msg) from None
        expected = self.sign(op, sha, expires_at)
        if not hmac.compare_digest(expected, signature):
            msg = "the presigned URL's signature is invalid; ask for a new one"
            raise Forbidden(msg)
        if expires_at < time.time():
            msg = "the presigned URL has expired; ask for a new one"
            raise Forbidden(msg)

    # -- upload -----------------------------------------------------------------------------

    def refuse_if_verified(self, sha: str) -> None:
        """Raise Conflict when a verified blob holds `sha` or too many candidates wait."""
        if self.exists(sha):
            msg = f"sha {sha} already exists"
            raise Conflict(msg)
        waiting = index.waiting(self._conn, sha)
        if waiting >= MAX_CANDIDATES:
            msg = (
                f"sha {sha} already has {waiting} unverified uploads waiting; create the "
                "revision that names it, or upload under a new salt"
            )
            raise Conflict(msg)

    async def receive(self, sha: str, chunks: AsyncIterator[bytes], declared: int | None) -> int:
        """Store a streamed upload as a candidate for `sha`; returns its size.

        Raises Conflict when a verified blob holds the sha and PayloadTooLarge past the limit.
        """
        self.refuse_if_verified(sha)
        if declared is not None and declared > self.max_blob_size:
            msg = f"upload of {declared} bytes exceeds the limit of {self.max_blob_size} bytes"
            raise PayloadTooLarge(msg)
        hasher = hashlib.sha384()
        tmp = self._tmp / f"{sha}.{os.getpid()}.{time.monotonic_ns()}"
        try:
            with tmp.open("wb") as f:
                try:
                    size = await write_hashed(chunks, f, hasher, limit=self.max_blob_size)
                except SizeLimitExceeded:
                    msg = f"upload exceeds the limit of {self.max_blob_size} bytes"
                    raise PayloadTooLarge(msg) from None
                f.flush()
                await asyncio.to_thread(os.fsync, f.fileno())
            if declared is not None and size != declared:
                msg = "upload ended before Content-Length bytes arrived"
                raise PayloadTooLarge(msg)
            self.add_candidate(sha, tmp, size, hasher)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def add_candidate(self, sha: str, tmp: Path, size: int, hasher: Any) -> None:
        """File the upload in `tmp` as a candidate. Synchronous from the check to the commit,
        so no promotion (which runs on this same event loop) can slip in between."""
        self.refuse_if_verified(sha)  # a revision may have verified the address meanwhile
        digest = hasher.copy().hexdigest()  # of the bytes alone: the same upload sent again
        if index.has_candidate(self._conn, sha, digest):
            return  # a retried upload: one candidate is enough
        candidate_id = uuid.uuid4().hex
        path = self._candidate(candidate_id)
        tmp.rename(path)  # the file before its row: a row always has its file
        try:
            with transaction(self._conn) as c:
                index.add_candidate(c, candidate_id, sha, size, digest, now())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._remember(candidate_id, hasher)

    def _remember(self, candidate_id: str, hasher: Any) -> None:
        self._states[candidate_id] = hasher
        self._states.move_to_end(candidate_id)
        while len(self._states) > _STATE_CACHE_SIZE:
            self._states.popitem(last=False)

    # -- verification -----------------------------------------------------------------------

    async def verify(self, sha: str, salt: str) -> int | None:
        """The size of the blob that hashes to `sha` under `salt`, promoting the candidate that
        does on first use; None when nothing uploaded to `sha` does."""
        async with self._lock(sha):
            verified = index.verified(self._conn, sha)
            if verified is not None:
                same = hmac.compare_digest(verified["salt"], salt)
                return int(verified["size"]) if same else None
            candidates = index.candidates(self._conn, sha)
            # Those whose hasher state is at hand first: O(1) each, no file read.
            candidates.sort(key=lambda c: c["id"] not in self._states)
            for candidate in candidates:
                if not await self._hashes_to(candidate["id"], sha, salt):
                    continue
                try:
                    await self._promote(sha, salt, candidate["id"], int(candidate["size"]))
                except FileNotFoundError:  # its file went away under us: not usable
                    continue
                return int(candidate["size"])
            return None

    async def _hashes_to(self, candidate_id: str, sha: str, salt: str) -> bool:
        state = self._states.get(candidate_id)
        if state is None:
            return await asyncio.to_thread(self._rehash, self._candidate(candidate_id), sha, salt)
        h = state.copy()
        h.update(salt.encode("utf-8"))
        return bool(h.hexdigest() == sha)

    @staticmethod
    def _rehash(path: Path, sha: str, salt: str) -> bool:
        h = hashlib.sha384()
        try:
            for chunk in iter_file(path):
                h.update(chunk)
        except FileNotFoundError:
            return False
        h.update(salt.encode("utf-8"))
        return h.hexdigest() == sha

    async def _promote(self, sha: str, salt: str, candidate_id: str, size: int) -> None:
        """Make the candidate the blob at `sha` (caller holds the sha's lock, and no `blobs`
        row exists), then discard every other candidate for it."""
        await asyncio.to_thread(self._link, self._candidate(candidate_id), self.path(sha))
        with transaction(self._conn) as c:
            # Any candidate filed meanwhile too: it was filed before this commit.
            dropped = index.promote(c, sha, size, salt, now())
        for candidate_id in dropped:
            self._candidate(candidate_id).unlink(missing_ok=True)
            self._states.pop(candidate_id, None)

    @staticmethod
    def _link(candidate: Path, final: Path) -> None:
        """Hard-link the candidate at `final` and make the link durable before any row
        names it."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(candidate, final)
        except FileExistsError:
            # No `blobs` row names this file (the caller checked, holding the lock): it was
            # left by a crash between link and commit, or stored unchecked by an older
            # release. It was never served; the verified content takes its place.
            final.unlink()
            os.link(candidate, final)
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
