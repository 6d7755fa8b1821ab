"""Multipart planning and the ETag a part's answer records (agent/registry/parts.py)."""

from __future__ import annotations

import pytest

from agent.registry.parts import AZURE_ETAG, MAX_PARTS, MiB, Span, etag_of, part_size, plan

GiB = 1024 * MiB


def test_parts_cover_the_file_in_order_all_one_size_but_the_last() -> None:
    spans = plan(10 * MiB + 5, 4 * MiB)
    assert spans == [Span(1, 0, 4 * MiB), Span(2, 4 * MiB, 4 * MiB), Span(3, 8 * MiB, 2 * MiB + 5)]


def test_a_file_on_a_part_boundary_has_no_empty_last_part() -> None:
    assert [s.size for s in plan(8 * MiB, 4 * MiB)] == [4 * MiB, 4 * MiB]  # as the SDK counts


def test_a_file_smaller_than_a_part_is_one_part_and_an_empty_one_too() -> None:
    assert plan(10, 4 * MiB) == [Span(1, 0, 10)]
    assert plan(0, 4 * MiB) == [Span(1, 0, 0)]


def test_the_default_part_size_gives_the_sdks_part_count() -> None:
    assert len(plan(3 * GiB, 128 * MiB)) == 24
    assert len(plan(2 * GiB + 1, 128 * MiB)) == 17


def test_the_part_grows_to_whole_mib_when_the_file_would_need_more_than_10000_parts() -> None:
    size = 10_000 * 128 * MiB + 1  # one byte past what 128 MiB parts allow
    grown = part_size(size, 128 * MiB)
    assert grown == 129 * MiB
    assert grown % MiB == 0
    spans = plan(size, 128 * MiB)
    assert len(spans) <= MAX_PARTS
    assert sum(s.size for s in spans) == size
    assert part_size(10_000 * 128 * MiB, 128 * MiB) == 128 * MiB  # exactly 10,000: kept


def test_a_tiny_chunksize_for_a_big_file_still_fits_in_10000_parts() -> None:
    spans = plan(5 * GiB, 1)
    assert len(spans) <= MAX_PARTS
    assert spans[-1].offset + spans[-1].size == 5 * GiB


def test_a_chunksize_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan(10, 0)


@pytest.mark.parametrize(
    ("status", "header", "azure", "expected"),
    [
        (200, '"abc123"', False, "abc123"),  # S3: quoted, the quotes removed
        (200, "abc123", False, "abc123"),
        (200, 'W/"weak"', False, "weak"),
        (200, None, False, None),  # no ETag: not acknowledged
        (200, '""', False, None),
        (201, '"x"', False, None),  # not what S3 answers
        (201, None, True, AZURE_ETAG),  # Azure staged the block: "N/A", as the SDK records
        (200, '"x"', True, None),
    ],
)
def test_the_etag_a_part_answer_records(
    status: int, header: str | None, azure: bool, expected: str | None
) -> None:
    assert etag_of(status, header, azure=azure) == expected
