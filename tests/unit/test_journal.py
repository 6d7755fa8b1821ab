"""The journal keeps owed final statuses across reopening, one per job, until paid."""

from __future__ import annotations

from pathlib import Path

from agent.jobs.states import JobStatus
from agent.runs.journal import Journal, Owed


def test_owed_statuses_survive_a_reopen_in_order_and_leave_when_paid(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.sqlite3"
    journal = Journal(path)
    journal.owe(Owed("job-1", "agent-a", JobStatus.COMPLETED, "outputs: x"))
    journal.owe(Owed("job-2", "agent-a", JobStatus.FAILED, "the tool exited with code 3"))
    journal.owe(Owed("job-1", "agent-a", JobStatus.FAILED, "a later word on job-1 wins"))
    journal.close()

    reopened = Journal(path)  # a restart, or a crash and a restart
    owed = reopened.owed()
    assert [(o.job_id, o.status) for o in owed] == [
        ("job-2", JobStatus.FAILED),
        ("job-1", JobStatus.FAILED),
    ]
    assert owed[1].message == "a later word on job-1 wins"
    reopened.paid("job-2")
    assert [o.job_id for o in reopened.owed()] == ["job-1"]
    assert path.stat().st_mode & 0o777 == 0o600
    reopened.close()
