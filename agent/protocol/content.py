"""Content addressing as the Istari registry does it: salted SHA-384 and file properties.

A blob's address is `sha384(content ‖ salt)` in lowercase hex, with a fresh 32-hex salt per
upload (spec §5.1). Everything here is pure or streams in fixed-size chunks, so a 1 GiB file
is hashed in constant memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CHUNK_SIZE = 1024 * 1024
READ_SIZE = 4 * 1024 * 1024  # one read of a file being hashed or sent
SHA_RE = re.compile(r"^[0-9a-f]{96}$")
SALT_RE = re.compile(r"^[0-9a-f]{32}$")

# Extensions the platform spells with capitals (spec §5.1).
_SPECIAL_EXTENSIONS = {"catpart": "CATPart", "catproduct": "CATProduct"}


def new_salt() -> str:
    """A fresh salt: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def salted_sha(content: bytes, salt: str) -> str:
    """The address of `content` under `salt`."""
    return hashlib.sha384(content + salt.encode("utf-8")).hexdigest()


def is_sha(value: str) -> bool:
    """Whether `value` is a well-formed blob address (96 lowercase hex characters)."""
    return SHA_RE.fullmatch(value) is not None


def is_salt(value: str) -> bool:
    """Whether `value` is a well-formed salt (32 lowercase hex characters)."""
    return SALT_RE.fullmatch(value) is not None


def iter_file(path: Path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield a file's bytes in chunks."""
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            yield chunk


@dataclass(frozen=True)
class Digest:
    """A blob's address with the salt and size it was computed from."""

    sha: str
    salt: str
    size: int


def digest_file(path: Path, salt: str | None = None) -> Digest:
    """Hash a file under `salt` (a fresh one if not given), reading into one buffer."""
    salt = salt or new_salt()
    h = hashlib.sha384()
    size = 0
    buf = memoryview(bytearray(READ_SIZE))
    with path.open("rb", buffering=0) as f:
        while got := f.readinto(buf):
            h.update(buf[:got])
            size += got
    h.update(salt.encode("utf-8"))
    return Digest(h.hexdigest(), salt, size)


async def file_slice(path: Path, offset: int, size: int) -> AsyncIterator[bytes]:
    """`size` bytes of a file from `offset`, in READ_SIZE reads done by a worker thread (the
    next read runs while the last is sent), so memory stays flat whatever the size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = offset + size

        def read(at: int) -> bytes:
            return os.pread(fd, min(READ_SIZE, end - at), at)

        at = offset
        ahead = asyncio.ensure_future(asyncio.to_thread(read, at)) if at < end else None
        while ahead is not None:
            chunk = await ahead
            if not chunk:
                msg = f"{path.name} ended {end - at} bytes early"
                raise OSError(msg)
            at += len(chunk)
            ahead = asyncio.ensure_future(asyncio.to_thread(read, at)) if at < end else None
            try:
                yield chunk
            except BaseException:
                if ahead is not None:
                    await asyncio.shield(ahead)
                raise
    finally:
        os.close(fd)


def extension_of(name: str) -> str | None:
    """The platform's extension for a file name: the last suffix, lowercased, no dot."""
    match = re.search(r"\.([^./]+(?:\.\d+)?)$", name)
    if match is None:
        return None
    ext = match.group(1).lower()
    return _SPECIAL_EXTENSIONS.get(ext, ext)


def mime_of(name: str) -> str | None:
    """The mime type guessed from the name, as the SDK does."""
    return mimetypes.guess_type(name)[0]


def properties_document(
    file_name: str,
    size: int,
    *,
    description: str | None = None,
    version_name: str | None = None,
    external_identifier: str | None = None,
    display_name: str | None = None,
) -> bytes:
    """The properties blob of a revision: compact JSON, keys in the SDK's order."""
    doc: dict[str, Any] = {
        "file_name": file_name,
        "size": size,
        "extension": extension_of(file_name),
        "mime": mime_of(file_name),
        "description": description,
        "version_name": version_name,
        "external_identifier": external_identifier,
        "display_name": display_name,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


class SizeLimitExceeded(Exception):
    """A stream carried more bytes than allowed."""


async def write_hashed(
    chunks: AsyncIterable[bytes], f: BinaryIO, hasher: Any, *, limit: int | None = None
) -> int:
    """Write a stream to `f` while `hasher` runs over it; returns the byte count.

    A worker thread hashes and writes chunk N while the event loop receives chunk N+1
    (hashlib and file writes release the GIL), so the socket, the CPU and the disk overlap.
    Raises SizeLimitExceeded past `limit` bytes.
    """

    def consume(chunk: bytes) -> None:
        hasher.update(chunk)
        f.write(chunk)

    size = 0
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if limit is not None and size > limit:
                msg = f"stream exceeds the limit of {limit} bytes"
                raise SizeLimitExceeded(msg)
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(consume, chunk))
    finally:
        # Never let the caller close the file under a write still running in the worker.
        if pending is not None:
            await asyncio.shield(pending)
    return size
