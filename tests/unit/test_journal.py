"""The journal keeps owed final statuses across reopening, one per job, until paid."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from agent.crashsafe.journal import Journal, Multipart, Owed
from agent.protocol.states import JobStatus


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


def test_claims_phases_and_uploads_are_kept_until_the_job_ends(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    journal.claiming("job-1", "agent-a")
    journal.claiming("job-2", "agent-a")
    journal.phase("job-1", JobStatus.RUNNING)
    journal.tool("job-1", 4242, 1700000000.5)
    journal.uploading("job-1", "receipt.txt", '{"name": "receipt.txt"}')
    journal.uploaded("job-1", "receipt.txt", "artifact-9")
    journal.uploading("job-1", "job-1.log", '{"name": "job-1.log"}')
    journal.close()

    reopened = Journal(path)
    assert [(a.job_id, a.phase, a.tool_pid) for a in reopened.unfinished()] == [
        ("job-1", JobStatus.RUNNING, 4242),
        ("job-2", JobStatus.PENDING, None),  # a claim sent but never answered
    ]
    done = reopened.upload("job-1", "receipt.txt")
    assert done is not None and done.resource_id == "artifact-9"
    pending = reopened.upload("job-1", "job-1.log")
    assert pending is not None and pending.resource_id is None
    assert pending.revision == '{"name": "job-1.log"}'
    reopened.end("job-1")
    assert reopened.upload("job-1", "receipt.txt") is None
    assert [a.job_id for a in reopened.unfinished()] == ["job-2"]
    reopened.close()


def test_a_journal_of_an_older_layout_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE owed (job_id TEXT PRIMARY KEY, status TEXT)")  # no user_version
    old.commit()
    old.close()
    journal = Journal(path)
    journal.owe(Owed("job-1", "agent-a", JobStatus.COMPLETED, "ok", JobStatus.UPLOADING))
    assert journal.owed()[0].reached is JobStatus.UPLOADING
    journal.close()


def test_only_notes_made_before_a_lasting_registry_change_wait_for_the_disk(
    tmp_path: Path,
) -> None:
    """A claim, a tool (a Slurm job id), an output's revision and a final status are flushed
    before the call returns (synchronous=FULL); phases, resource ids and ends are not (a power
    loss rolls them back to a state recovery handles). Seen in the SQL SQLite runs."""
    journal = Journal(tmp_path / "journal.sqlite3")
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)  # the connection is the journal's own

    def flushed(note: Callable[[], None]) -> bool:
        statements.clear()
        note()
        writes = [s for s in statements if not s.startswith("PRAGMA")]
        assert writes, statements
        return statements[0] == "PRAGMA synchronous=FULL" and statements[-1] == (
            "PRAGMA synchronous=NORMAL"
        )

    owed = Owed("job-1", "agent-a", JobStatus.COMPLETED, "ok")
    assert flushed(lambda: journal.claiming("job-1", "agent-a"))
    assert not flushed(lambda: journal.phase("job-1", JobStatus.RUNNING))
    assert flushed(lambda: journal.tool("job-1", 4242, 1700000000.5))
    assert flushed(lambda: journal.uploading("job-1", "out.txt", "{}"))
    assert not flushed(lambda: journal.uploaded("job-1", "out.txt", "artifact-1"))
    assert flushed(lambda: journal.owe(owed))
    assert not flushed(lambda: journal.end("job-1"))
    assert not flushed(lambda: journal.paid("job-1"))
    (mode,) = journal._conn.execute("PRAGMA synchronous").fetchone()
    assert mode == 1  # NORMAL between notes
    journal.close()


def _upload(urls: dict[int, str]) -> Multipart:
    return Multipart("a" * 96, "b" * 32, 3 * 2**20, 123, "up-1", 2**20, urls, {})


def test_a_multipart_upload_and_its_parts_survive_a_reopen_until_the_job_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    journal.multipart_begun("job-1", "big.bin", _upload({1: "u1", 2: "u2", 3: "u3"}))
    journal.part_acknowledged("job-1", "big.bin", 2, "etag-2")
    journal.part_acknowledged("job-1", "big.bin", 1, "etag-1")
    journal.close()
    reopened = Journal(path)
    found = reopened.multipart("job-1", "big.bin")
    assert found is not None
    assert (found.sha, found.salt, found.upload_id, found.part_size) == (
        "a" * 96,
        "b" * 32,
        "up-1",
        2**20,
    )
    assert found.urls == {1: "u1", 2: "u2", 3: "u3"}
    assert found.etags == {1: "etag-1", 2: "etag-2"}
    reopened.multipart_begun("job-1", "big.bin", _upload({1: "v1"}))  # a new upload id
    renewed = reopened.multipart("job-1", "big.bin")
    assert renewed is not None
    assert renewed.etags == {}  # the parts of the old upload do not carry over
    reopened.end("job-1")
    assert reopened.multipart("job-1", "big.bin") is None
    reopened.close()


def test_part_urls_are_kept_only_in_a_private_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    journal = Journal(path)
    assert path.stat().st_mode & 0o777 == 0o600  # made private at open
    assert journal.private
    journal.private = False  # as for a file the agent could not make private
    journal.multipart_begun("job-1", "big.bin", _upload({1: "secret-url"}))
    found = journal.multipart("job-1", "big.bin")
    assert found is not None
    assert found.urls == {}
    journal.close()
    assert b"secret-url" not in path.read_bytes()


def test_a_version_3_journal_keeps_what_it_owes_and_gains_the_multipart_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    journal.owe(Owed("job-1", "agent-a", JobStatus.COMPLETED, "ok"))
    journal.close()
    old = sqlite3.connect(path)
    old.execute("DROP TABLE multipart")
    old.execute("DROP TABLE multipart_parts")
    old.execute("PRAGMA user_version = 3")
    old.commit()
    old.close()
    upgraded = Journal(path)
    assert [o.job_id for o in upgraded.owed()] == ["job-1"]
    upgraded.multipart_begun("job-1", "big.bin", _upload({1: "u"}))
    assert upgraded.multipart("job-1", "big.bin") is not None
    upgraded.close()
