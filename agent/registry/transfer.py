"""Uploading and downloading files through the registry's content-addressed storage.

Hashing streams in chunks and uploads stream from disk, so memory stays flat whatever the
file's size. An upload is: hash under a fresh salt, ask for an upload URL (409 = already
stored, skip), PUT; once for the properties blob and once for the content (spec §5.5). A file
above `multipart_threshold` goes in parts instead (multipart.py), resumed after a restart
when a ledger kept its parts (under its salt, the file unchanged: not hashed again).
`progress` hears of the bytes sent as they are acknowledged (each part, or the whole).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from agent.concurrently import both
from agent.protocol.content import (
    digest_file,
    extension_of,
    mime_of,
    new_salt,
    properties_document,
    salted_sha,
)
from agent.registry.client import RegistryClient
from agent.registry.download import Progress, fetch
from agent.registry.models import FileRevision, NewRevision, Token
from agent.registry.multipart import (
    FORGETFUL,
    Ledger,
    MultipartSettings,
    resumable,
    upload_multipart,
)


async def upload_blob(
    client: RegistryClient,
    path: Path,
    *,
    multipart: MultipartSettings | None = None,
    ledger: Ledger = FORGETFUL,
    progress: Progress | None = None,
) -> Token:
    """Upload a file's bytes as a blob, in parts above the threshold; returns its token."""
    settings = multipart or MultipartSettings()
    stat = path.stat()
    if stat.st_size <= settings.threshold:
        digest = await asyncio.to_thread(digest_file, path)
        return await _store(client, Token(sha=digest.sha, salt=digest.salt), path, progress)
    earlier = resumable(ledger, path, stat.st_size, stat.st_mtime_ns)
    if earlier is not None:
        token = Token(sha=earlier.sha, salt=earlier.salt)
    else:
        digest = await asyncio.to_thread(digest_file, path)
        token = Token(sha=digest.sha, salt=digest.salt)
    await upload_multipart(
        client,
        path,
        token,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        settings=settings,
        ledger=ledger,
        earlier=earlier,
        progress=progress,
    )
    return token


async def upload_bytes(client: RegistryClient, content: bytes) -> Token:
    """Upload a few bytes held in memory (a properties document) as a blob."""
    salt = new_salt()
    return await _store(client, Token(sha=salted_sha(content, salt), salt=salt), content)


async def _store(
    client: RegistryClient, token: Token, content: Path | bytes, progress: Progress | None = None
) -> Token:
    """PUT `content` under its address unless the registry has it already (no URL given);
    `progress` hears of a file's bytes as they are sent (all at once when none need be)."""
    url = await client.upload_url(token.sha)
    if url is not None:
        await client.put_blob(url.url, content, progress)
    elif progress is not None and isinstance(content, Path):
        progress(content.stat().st_size)
    return token


async def upload_revision(
    client: RegistryClient,
    path: Path,
    *,
    name: str | None = None,
    description: str | None = None,
    display_name: str | None = None,
    multipart: MultipartSettings | None = None,
    ledger: Ledger = FORGETFUL,
    progress: Progress | None = None,
) -> NewRevision:
    """Upload a file (properties blob and content) and return the revision to create."""
    name = name or path.name
    size = path.stat().st_size
    props = properties_document(name, size, description=description, display_name=display_name)
    # Side by side: two small round trips become one for a typical output.
    properties_token, content_token = await both(
        upload_bytes(client, props),
        upload_blob(client, path, multipart=multipart, ledger=ledger, progress=progress),
    )
    return NewRevision(
        content_token=content_token,
        properties_token=properties_token,
        name=name,
        extension=extension_of(name),
        size=size,
        mime=mime_of(name),
        description=description,
        display_name=display_name,
    )


async def download_revision(
    client: RegistryClient,
    revision: FileRevision,
    dest: Path,
    *,
    progress: Progress | None = None,
    retries: int = 0,
    budget: float = math.inf,
    resume: bool = False,
) -> int:
    """Download a revision's content into `dest`, verified against its sha; returns size.

    A cut connection is resumed with Range; a refused (expired) URL is asked for again; other
    failures are retried `retries` times within `budget` seconds of the last progress
    (agent/registry/download.py). `progress` is told each batch's byte count as it arrives.
    `resume` picks up bytes an earlier process left at `dest`.
    """
    token = revision.content_token

    async def url() -> str:
        return (await client.download_url(token.sha)).url

    return await fetch(
        client.blob_source(url),
        dest,
        token.sha,
        token.salt,
        size=revision.size,
        progress=progress,
        retries=retries,
        budget=budget,
        resume=resume,
    )
