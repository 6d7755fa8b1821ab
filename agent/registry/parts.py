"""Multipart planning and part answers, pure: which bytes each part carries, and the ETag a
store's answer to a part PUT records (spec §5.4)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PARTS = 10_000  # S3's limit, and the registry's (`num_parts` 1..10000)
MiB = 2**20
AZURE_ETAG = "N/A"  # what the SDK records for a block Azure staged (it answers 201, no ETag)


@dataclass(frozen=True)
class Span:
    """Part `number` (from 1): `size` bytes of the file from `offset`."""

    number: int
    offset: int
    size: int


def part_size(size: int, chunksize: int) -> int:
    """The part size for a file of `size` bytes: `chunksize`, or, where that would take more
    than MAX_PARTS parts, the smallest whole number of MiB that fits in MAX_PARTS.

    The SDK keeps `chunksize` whatever the size and is refused past 10,000 parts; growing the
    part is what boto3 does (inferred, docs/agent.md, "Large outputs: multipart uploads").
    """
    if chunksize < 1:
        msg = f"multipart_chunksize must be positive, not {chunksize}"
        raise ValueError(msg)
    if -(-size // chunksize) <= MAX_PARTS:
        return chunksize
    return -(-size // (MAX_PARTS * MiB)) * MiB


def plan(size: int, chunksize: int) -> list[Span]:
    """The parts of a file of `size` bytes: all of one size but the last (1 to MAX_PARTS)."""
    step = part_size(size, chunksize)
    if size == 0:
        return [Span(1, 0, 0)]
    return [Span(n + 1, at, min(step, size - at)) for n, at in enumerate(range(0, size, step))]


def etag_of(status: int, etag: str | None, *, azure: bool) -> str | None:
    """What a part PUT's answer records as the part's ETag, as the SDK reads it: S3's quoted
    ETag of a 200 without its quotes, `N/A` for Azure's 201; None when the answer does not
    acknowledge the part (a 200 without an ETag, or the status the store does not give)."""
    if azure:
        return AZURE_ETAG if status == 201 else None
    if status != 200 or etag is None:
        return None
    value = etag.strip().removeprefix("W/").strip('"')
    return value or None
