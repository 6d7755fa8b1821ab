"""Multipart uploads of large files, as the SDK makes them (spec §5.4), resumable.

A file above `multipart_threshold` is sent as parts of `multipart_chunksize` bytes (parts.py):
`POST /api/v2/tokens/multipart-upload` for an upload id and a URL per part, the parts PUT
`upload_pool_size` at once, each streamed from its slice of the file (memory stays flat), then
`complete` with every part's ETag. A part that fails is retried alone (within the retry
budget and `upload_retry_limit`); a part URL refused with 403 (expired) means asking for a
new upload, under the same sha, and sending every part again: an upload id's URLs cannot be
renewed, and parts do not carry over to another upload id (docs/agent.md, "Large outputs:
multipart uploads").
A failure that will not heal cancels the upload.

A `Ledger` (the agent's journal) hears of the upload once begun and of each part once
acknowledged, so that an agent killed mid-upload and started again sends only the parts
missing, under the same upload id and the same salt, after checking the file is unchanged
(its size and modification time).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from agent.concurrently import all_of
from agent.registry import parts
from agent.registry.client import RegistryClient
from agent.registry.download import Progress
from agent.registry.errors import NotFound, RegistryError, URLExpired
from agent.registry.models import Token
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

GiB = 2**30
MiB = 2**20


@dataclass(frozen=True)
class MultipartSettings:
    """When and how to split an upload (the SDK's defaults)."""

    threshold: int = 2 * GiB  # files larger than this go in parts
    chunksize: int = 128 * MiB
    pool: int = 4  # parts sent at once
    retries: int = 5  # per part (and per begin or complete), after the first attempt
    budget: float = 60.0  # seconds each call is retried


@dataclass
class Session:
    """One multipart upload of one file, as the ledger keeps it."""

    sha: str
    salt: str
    size: int
    mtime_ns: int
    upload_id: str
    part_size: int
    urls: dict[int, str]  # presigned: secrets, never logged
    etags: dict[int, str] = field(default_factory=dict)  # the parts acknowledged

    def matches(self, size: int, mtime_ns: int) -> bool:
        """Whether the file is still the one this upload was begun for."""
        return (self.size, self.mtime_ns) == (size, mtime_ns)


class Ledger(Protocol):
    """Where a multipart upload's progress is kept across a restart of the agent."""

    def recall(self, path: Path) -> Session | None:
        """The upload begun earlier for this file, with its acknowledged parts."""
        ...

    def begun(self, path: Path, session: Session) -> None:
        """An upload was begun for this file (replacing any earlier one)."""
        ...

    def acknowledged(self, path: Path, number: int, etag: str) -> None:
        """Part `number` of the file's upload was acknowledged with `etag`."""
        ...

    def finished(self, path: Path) -> None:
        """The file's upload was completed or canceled."""
        ...


class _Forgetful:
    """The ledger of an upload nobody resumes."""

    def recall(self, path: Path) -> Session | None:
        return None

    def begun(self, path: Path, session: Session) -> None:
        pass

    def acknowledged(self, path: Path, number: int, etag: str) -> None:
        pass

    def finished(self, path: Path) -> None:
        pass


FORGETFUL: Ledger = _Forgetful()


def resumable(ledger: Ledger, path: Path, size: int, mtime_ns: int) -> Session | None:
    """The earlier upload of this file to resume, if the file has not changed since."""
    earlier = ledger.recall(path)
    if earlier is None:
        return None
    if not earlier.matches(size, mtime_ns):
        log.info("upload.multipart_file_changed", file=path.name, upload_id=earlier.upload_id)
        ledger.finished(path)
        return None
    return earlier


async def upload_multipart(
    client: RegistryClient,
    path: Path,
    token: Token,
    *,
    size: int,
    mtime_ns: int,
    settings: MultipartSettings,
    ledger: Ledger = FORGETFUL,
    earlier: Session | None = None,
    progress: Progress | None = None,
) -> None:
    """Upload `path` in parts under `token` (already hashed), resuming `earlier` if given."""
    plan = parts.plan(size, settings.chunksize)
    session = earlier
    if session is not None and session.part_size != plan[0].size:
        session = None  # another chunk size now: its parts do not fit
    if session is not None and progress is not None:
        progress(sum(s.size for s in plan if s.number in session.etags))
    for renewal in (False, True):
        if session is None:
            session = await _begin(client, path, token, size, mtime_ns, plan, settings)
            if session is None:
                return  # already stored
            ledger.begun(path, session)
        if await _attempt(client, path, plan, session, settings, ledger, progress, renewal):
            ledger.finished(path)
            return
        # Its URLs expired, or the registry forgot it: a new upload, every part sent again.
        if progress is not None and session.etags:
            progress(-sum(s.size for s in plan if s.number in session.etags))
        await _cancel(client, session, ledger, path)
        session = None


async def _attempt(
    client: RegistryClient,
    path: Path,
    plan: list[parts.Span],
    session: Session,
    settings: MultipartSettings,
    ledger: Ledger,
    progress: Progress | None,
    last: bool,
) -> bool:
    """Send the missing parts and complete; False when a new upload id is needed (unless
    this is the `last` try). An error that will not heal cancels the upload; an outage
    keeps it, for the next attempt to resume."""
    try:
        await _send_parts(client, path, plan, session, settings, ledger, progress)
        await _complete(client, session, plan, settings)
    except (URLExpired, NotFound) as e:
        if last:
            await _cancel(client, session, ledger, path)
            raise
        why = "expired" if isinstance(e, URLExpired) else "unknown"
        log.info("upload.multipart_renewed", file=path.name, upload_id=session.upload_id, why=why)
        return False
    except RegistryError as e:
        if not e.retryable:
            await _cancel(client, session, ledger, path)
        raise
    return True


async def _begin(
    client: RegistryClient,
    path: Path,
    token: Token,
    size: int,
    mtime_ns: int,
    plan: list[parts.Span],
    settings: MultipartSettings,
) -> Session | None:
    begun = await with_retries(
        lambda: client.begin_multipart(token.sha, len(plan)),
        budget=settings.budget,
        what="begin multipart upload",
        retries=settings.retries,
    )
    if begun is None:
        return None
    urls = {int(n): u.url for n, u in begun.upload_urls.items()}
    missing = [s.number for s in plan if s.number not in urls]
    if missing:
        with contextlib.suppress(RegistryError):
            await client.cancel_multipart(token.sha, begun.upload_id)
        msg = f"the registry gave no URL for part(s) {missing[:10]} of {path.name}"
        raise RegistryError(msg)
    log.info("upload.multipart_begun", file=path.name, parts=len(plan), upload_id=begun.upload_id)
    return Session(token.sha, token.salt, size, mtime_ns, begun.upload_id, plan[0].size, urls)


async def _send_parts(
    client: RegistryClient,
    path: Path,
    plan: list[parts.Span],
    session: Session,
    settings: MultipartSettings,
    ledger: Ledger,
    progress: Progress | None,
) -> None:
    """PUT every part not yet acknowledged, `settings.pool` at once."""

    async def send(span: parts.Span) -> None:
        url = session.urls[span.number]
        etag = await with_retries(
            lambda: client.put_part(url, path, span.offset, span.size),
            budget=settings.budget,
            what=f"part {span.number}",
            retries=settings.retries,
        )
        session.etags[span.number] = etag
        ledger.acknowledged(path, span.number, etag)
        if progress is not None:
            progress(span.size)

    missing = [s for s in plan if s.number not in session.etags]
    await all_of((send(s) for s in missing), limit=settings.pool)


async def _complete(
    client: RegistryClient, session: Session, plan: list[parts.Span], settings: MultipartSettings
) -> None:
    done = [(s.number, session.etags[s.number]) for s in plan]
    await with_retries(
        lambda: client.complete_multipart(session.sha, session.upload_id, done),
        budget=settings.budget,
        what="complete multipart upload",
        retries=settings.retries,
    )


async def _cancel(client: RegistryClient, session: Session, ledger: Ledger, path: Path) -> None:
    """Give the upload up (best effort: the registry sweeps what it is not told of)."""
    with contextlib.suppress(RegistryError):
        await client.cancel_multipart(session.sha, session.upload_id)
    ledger.finished(path)
    log.info("upload.multipart_canceled", file=path.name, upload_id=session.upload_id)
