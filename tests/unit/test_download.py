"""Resumable downloads: what each response means, and when to try again (pure)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.registry.download import (
    MAX_ATTEMPTS,
    Attempts,
    Partial,
    Step,
    content_range_start,
    decide,
    range_header,
)


@pytest.mark.parametrize(
    ("status", "content_range", "have", "step"),
    [
        (200, None, 0, Step.RESTART),  # a plain download
        (200, None, 5000, Step.RESTART),  # Range ignored: the whole body, from zero
        (206, "bytes 5000-9999/10000", 5000, Step.APPEND),  # resumed where asked
        (206, "bytes 0-9999/10000", 5000, Step.BAD_RANGE),  # another start than asked
        (206, "bytes 4000-9999/10000", 5000, Step.BAD_RANGE),
        (206, "bytes 5000-9999/*", 5000, Step.APPEND),  # unknown total is fine
        (206, None, 5000, Step.BAD_RANGE),  # no Content-Range
        (206, "bytes 9999-5000/10000", 5000, Step.BAD_RANGE),  # malformed (end before start)
        (206, "items 5000-9999/10000", 5000, Step.BAD_RANGE),
        (206, "bytes 0-9999/10000", 0, Step.BAD_RANGE),  # nothing was asked for
        (416, "bytes */10000", 5000, Step.BAD_RANGE),
        (403, None, 5000, Step.EXPIRED),
        (404, None, 0, Step.REJECTED),
        (500, None, 0, Step.REJECTED),
    ],
)
def test_each_response_is_followed_by_one_step(
    status: int, content_range: str | None, have: int, step: Step
) -> None:
    assert decide(status, content_range, have) is step


def test_content_range_start_and_range_header() -> None:
    assert content_range_start("bytes 7-9/10") == 7
    assert content_range_start(" BYTES 0-0/1 ") == 0
    assert content_range_start("bytes 7-/10") is None
    assert content_range_start(None) is None
    assert range_header(0) == {}
    assert range_header(1048576) == {"Range": "bytes=1048576-"}


def test_an_attempt_that_made_progress_resumes_at_once_and_counts_afresh() -> None:
    a = Attempts(retries=1, budget=60, started=0.0)
    assert a.after_failure(have=100, now=1.0) == 0.0  # progress
    delay = a.after_failure(have=100, now=2.0)  # none: the one retry allowed
    assert delay is not None and 0.1 <= delay <= 0.3
    assert a.after_failure(have=200, now=3.0) == 0.0  # progress forgives it
    assert a.after_failure(have=200, now=4.0) is not None
    assert a.after_failure(have=200, now=5.0) is None  # two without progress: past retries


def test_a_restart_below_the_best_is_not_progress() -> None:
    a = Attempts(retries=0, budget=60, started=0.0)
    assert a.after_failure(have=500, now=1.0) == 0.0
    assert a.after_failure(have=300, now=2.0) is None  # from zero again, not past 500


def test_the_budget_since_the_last_progress_bounds_the_waiting() -> None:
    a = Attempts(retries=100, budget=5, started=0.0)
    assert a.after_failure(have=10, now=100.0) == 0.0  # the clock restarts at progress
    assert a.after_failure(have=10, now=101.0) is not None
    assert a.after_failure(have=10, now=106.0) is None  # 6 s without progress


def test_attempts_are_capped_however_much_progress() -> None:
    a = Attempts(retries=0, budget=60, started=0.0)
    results = [a.after_failure(have=n + 1, now=float(n)) for n in range(MAX_ATTEMPTS)]
    assert results[-2] == 0.0
    assert results[-1] is None


def test_a_partial_file_left_by_another_process_is_hashed_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "part"
    path.write_bytes(b"abc" * 1000)
    partial = Partial.adopt(path)
    assert (partial.have, partial.foreign) == (3000, True)
    expected = hashlib.sha384(b"abc" * 1000 + b"salt").hexdigest()
    assert partial.matches(expected, "salt")
    partial.reset()
    assert (partial.have, path.stat().st_size, partial.foreign) == (0, 0, False)
    assert Partial.adopt(tmp_path / "absent").have == 0
