"""The job state table, checked exhaustively."""

from __future__ import annotations

import itertools

import pytest

from agent.protocol.states import (
    ACTIVE,
    AGENT_STATUS_FOR_PHASE,
    MOVES,
    TERMINAL,
    JobStatus,
    can_move,
    catch_up,
    predecessors,
)

HAPPY_PATH = [
    JobStatus.PENDING,
    JobStatus.CLAIMED,
    JobStatus.VALIDATING,
    JobStatus.RUNNING,
    JobStatus.UPLOADING,
    JobStatus.COMPLETED,
]


def test_every_status_has_a_row() -> None:
    assert set(MOVES) == set(JobStatus)


def test_happy_path_is_allowed() -> None:
    for a, b in itertools.pairwise(HAPPY_PATH):
        assert can_move(a, b), (a, b)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_statuses_never_move(terminal: JobStatus) -> None:
    assert all(not can_move(terminal, s) for s in JobStatus)


@pytest.mark.parametrize("status", sorted(set(JobStatus) - TERMINAL - {JobStatus.UNKNOWN}))
def test_cancel_is_reachable_from_every_live_status(status: JobStatus) -> None:
    assert can_move(status, JobStatus.CANCELED)


def test_a_second_claim_is_refused() -> None:
    assert not can_move(JobStatus.CLAIMED, JobStatus.CLAIMED)
    assert predecessors(JobStatus.CLAIMED) == {JobStatus.PENDING}


def test_no_move_goes_back_to_created_or_skips_the_claim() -> None:
    for a, b in itertools.product(JobStatus, repeat=2):
        if b is JobStatus.CREATED:
            assert not can_move(a, b)
        if a is JobStatus.PENDING and can_move(a, b):
            assert b in {JobStatus.CLAIMED, JobStatus.CANCELED}


def test_predecessors_is_the_inverse_of_the_table() -> None:
    for a, b in itertools.product(JobStatus, repeat=2):
        assert (a in predecessors(b)) == can_move(a, b)


def test_every_active_phase_has_an_agent_status() -> None:
    assert set(AGENT_STATUS_FOR_PHASE) >= ACTIVE
    assert set(AGENT_STATUS_FOR_PHASE) >= TERMINAL


@pytest.mark.parametrize(
    ("current", "target", "moves"),
    [
        ("Claimed", "Uploading", ["Validating", "Running", "Uploading"]),
        ("Validating", "Running", ["Running"]),
        ("Running", "Running", []),  # already shown: a resumed job repeats nothing
        ("Uploading", "Running", []),  # the registry is past it (a resumed job starts over)
        ("Running", "Completed", ["Completed"]),
        ("Canceled", "Uploading", ["Uploading"]),
    ],
)
def test_catch_up_reports_missed_phases_in_order(
    current: str, target: str, moves: list[str]
) -> None:
    steps = catch_up(JobStatus(current), JobStatus(target))
    assert [s.value for s in steps] == moves
    previous = JobStatus(current)
    if current in ("Claimed", "Validating", "Running"):  # each step is a legal move
        for step in steps:
            assert can_move(previous, step), (previous, step)
            previous = step
