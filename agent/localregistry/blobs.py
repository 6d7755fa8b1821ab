"""Content-addressed blob storage with HMAC-signed, expiring presigned URLs.

Blobs live under `DIR/blobs/ab/cd/<sha>`. An upload streams to a temporary file while a
SHA-384 runs over it, and is renamed into place only once the whole body has arrived, so a
dropped connection leaves nothing behind. The salt of a blob's address is not known until a
revision names it, so the hasher's state (a few hundred bytes) is kept after the upload:
checking `sha384(blob ‖ salt)` is then O(1) instead of a second pass over the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from agent.localregistry.db import transaction
from agent.localregistry.errors import Conflict, Forbidden, PayloadTooLarge
from agent.localregistry.wire import now
from agent.storage import SizeLimitExceeded, iter_file, write_hashed

_STATE_CACHE_SIZE = 4096


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
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._conn = conn
        self._key = signing_key
        self.url_ttl = url_ttl
        self.max_blob_size = max_blob_size
        self._states: OrderedDict[str, Any] = OrderedDict()
        # Leftovers of uploads cut short by a crash are never part of any blob.
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, sha: str) -> Path:
        """Where the blob with address `sha` lives."""
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        """Whether a blob is stored under `sha`."""
        row = self._conn.execute("SELECT 1 FROM blobs WHERE sha = ?", (sha,)).fetchone()
        return row is not None

    def size(self, sha: str) -> int | None:
        """The stored blob's size in bytes, or None."""
        row = self._conn.execute("SELECT size FROM blobs WHERE sha = ?", (sha,)).fetchone()
        return None if row is None else int(row["size"])

    # -- presigned URLs -------------------------------------------------------------------

    def _signature(self, op: str, sha: str, expires: int) -> str:
        message = f"{op}\n{sha}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def presign(self, base_url: str, op: str, sha: str) -> tuple[str, str]:
        """A URL allowing `op` ("get" or "put") on `sha`, and its expiry as ISO-8601."""
        expires = int(time.time()) + self.url_ttl
        query = urlencode(
            {"op": op, "expires": expires, "signature": self._signature(op, sha, expires)}
        )
        expiry = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
        return f"{base_url}/blobs/{sha}?{query}", expiry

    def check_signature(self, op: str, sha: str, expires: str, signature: str) -> None:
        """Refuse a presigned request whose signature is wrong or whose time has passed."""
        try:
            expires_at = int(expires)
        except ValueError:
            msg = "the presigned URL is malformed; ask for a new one"
            raise Forbidden(msg) from None
        expected = self._signature(op, sha, expires_at)
        if not hmac.compare_digest(expected, signature):
            msg = "the presigned URL's signature is invalid; ask for a new one"
            raise Forbidden(msg)
        if expires_at < time.time():
            msg = "the presigned URL has expired; ask for a new one"
            raise Forbidden(msg)

    # -- upload -----------------------------------------------------------------------------

    async def receive(self, sha: str, chunks: AsyncIterator[bytes], declared: int | None) -> int:
        """Store a streamed upload under `sha`; returns its size.

        Raises Conflict when the sha is already stored and PayloadTooLarge past the limit.
        """
        if self.exists(sha):
            msg = f"sha {sha} already exists"
            raise Conflict(msg)
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
            final = self.path(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        with transaction(self._conn) as c:
            c.execute(
                "INSERT OR IGNORE INTO blobs(sha, size, created, salt) VALUES (?, ?, ?, NULL)",
                (sha, size, now()),
            )
        self._remember(sha, hasher)
        return size

    def _remember(self, sha: str, hasher: Any) -> None:
        self._states[sha] = hasher
        self._states.move_to_end(sha)
        while len(self._states) > _STATE_CACHE_SIZE:
            self._states.popitem(last=False)

    # -- verification -----------------------------------------------------------------------

    async def matches(self, sha: str, salt: str) -> bool:
        """Whether the stored blob hashes to `sha` under `salt`."""
        row = self._conn.execute("SELECT salt FROM blobs WHERE sha = ?", (sha,)).fetchone()
        if row is None:
            return False
        if row["salt"] is not None:
            return hmac.compare_digest(row["salt"], salt)
        state = self._states.get(sha)
        if state is not None:
            h = state.copy()
            h.update(salt.encode("utf-8"))
            ok = bool(h.hexdigest() == sha)
        else:
            ok = await asyncio.to_thread(self._rehash, sha, salt)
        if ok:
            with transaction(self._conn) as c:
                c.execute("UPDATE blobs SET salt = ? WHERE sha = ?", (salt, sha))
            self._states.pop(sha, None)
        return ok

    def _rehash(self, sha: str, salt: str) -> bool:
        h = hashlib.sha384()
        for chunk in iter_file(self.path(sha)):
            h.update(chunk)
        h.update(salt.encode("utf-8"))
        return h.hexdigest() == sha
