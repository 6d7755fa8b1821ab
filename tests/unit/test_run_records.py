"""Run records, the storage side: steps, retention, and what inputs are kept."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from agent.runs.model import Entry, RunFilter, Sample, describe_inputs
from agent.runs.store import RunRecords


def test_steps_close_in_order_and_the_end_closes_the_last(tmp_path: Path) -> None:
    records = RunRecords(tmp_path / "runs.sqlite3")
    run_id = records.begin("job-1", "agent-a", "@m:f", "@m", "1.0")
    for phase in ("Validating", "Running", "Uploading"):
        records.step(run_id, phase)
    records.end(run_id, "Completed", "completed", "outputs: x", 0)
    run = records.get("job-1")
    assert run is not None and run.id == run_id
    assert [s.phase for s in run.steps] == ["Validating", "Running", "Uploading"]
    assert all(s.ended is not None for s in run.steps)
    assert (tmp_path / "runs.sqlite3").stat().st_mode & 0o777 == 0o600
    records.close()


def test_retention_keeps_the_newest_and_drops_the_old(tmp_path: Path) -> None:
    records = RunRecords(tmp_path / "runs.sqlite3")
    ids = []
    for n in range(5):
        run_id = records.begin(f"job-{n}", "a", "f", "m", "1")
        records.end(run_id, "Completed", "completed", "", 0)
        ids.append(run_id)
    running = records.begin("job-live", "a", "f", "m", "1")  # unfinished: never pruned
    assert records.prune(max_age_days=30, max_count=3) == 3  # the newest 3 stay
    assert {r.id for r in records.list(RunFilter(limit=100))} == {ids[3], ids[4], running}
    assert records.prune(max_age_days=1e-9, max_count=100) == 2  # then by age
    assert {r.id for r in records.list(RunFilter(limit=100))} == {running}
    records.close()


def test_inputs_keep_files_by_sha_parameters_by_size_and_credentials_by_name_only(
    tmp_path: Path,
) -> None:
    model = tmp_path / "part.txt"
    model.write_text("model")
    secret = tmp_path / "auth" / "api"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    described = describe_inputs({
        "part": {"type": "user_model", "value": str(model)},
        "size": {"type": "parameter", "value": 12.5},
        "api": {"type": "auth_info", "value": str(secret)},
    })  # fmt: skip
    assert described[0]["sha256"] and described[0]["size"] == 5
    assert described[1] == {"name": "size", "type": "parameter", "size": 4}
    assert described[2] == {"name": "api", "type": "auth_info"}  # no path, size or sha


def test_listing_filters_and_pages(tmp_path: Path) -> None:
    records = RunRecords(tmp_path / "runs.sqlite3")
    made = []
    for n, (function, status) in enumerate(
        [("@m:mesh", "Completed"), ("@m:solve", "Failed"), ("@m:mesh", "Completed")]
    ):
        run_id = records.begin(f"job-{n}", "a", function, "@m", "1")
        records.end(run_id, status, "completed", "", 0)
        made.append(run_id)
    assert [r.id for r in records.list(RunFilter(limit=2))] == [made[2], made[1]]  # newest first
    assert [r.id for r in records.list(RunFilter(limit=2, page=2))] == [made[0]]
    assert records.count(RunFilter(limit=1)) == 3  # over all pages
    meshes = RunFilter(keyword="mesh", status="Completed")
    assert {r.id for r in records.list(meshes)} == {made[0], made[2]}
    assert records.list(RunFilter(since=time.time() + 60)) == []
    assert len(records.list(RunFilter(until=time.time() + 60))) == 3
    records.close()


def test_entries_and_samples_go_with_their_run(tmp_path: Path) -> None:
    records = RunRecords(tmp_path / "runs.sqlite3")
    run_id = records.begin("job-1", "a", "f", "m", "1")
    records.entry(run_id, Entry(1.0, "INFO", "half", {"k": "v"}, 50.0))
    records.entry(run_id, Entry(2.0, "WARN", "no progress here", {}))
    records.sample(run_id, Sample(1.5, 99.0, 2048))
    run = records.get(run_id)
    assert run is not None and run.progress == 50.0  # the last progress reported
    assert [e.message for e in run.entries] == ["half", "no progress here"]
    assert records.samples(run_id) == [Sample(1.5, 99.0, 2048)]
    assert records.delete(run_id)
    assert records.samples(run_id) == []
    leftovers = records._conn.execute("SELECT COUNT(*) FROM entries").fetchone()
    assert leftovers == (0,)
    records.close()


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000, not '0'"),
        ({"limit": "1001"}, "limit must be a whole number from 1 to 1000"),
        ({"page": "-1"}, "page must be a whole number from 1 or more"),
        ({"since": "yesterday"}, "since must be an ISO 8601 time or epoch seconds"),
        ({"colour": "red"}, "unknown query parameter 'colour'"),
    ],
)
def test_a_bad_query_says_what_is_wrong(query: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(problem)):
        RunFilter.parse(query)


def test_a_query_of_strings() -> None:
    f = RunFilter.parse({"since": "2026-01-01T00:00:00", "until": "1800000000", "page": "3"})
    assert f.since == 1767225600.0 and f.until == 1800000000.0
    assert (f.limit, f.offset) == (50, 100)


def test_a_run_is_found_by_a_unique_start_and_wildcards_are_plain_characters(
    tmp_path: Path,
) -> None:
    records = RunRecords(tmp_path / "runs.sqlite3")
    first = records.begin("job-a1", "a", "f", "m", "1")
    again = records.begin("job-a1", "a", "f", "m", "1")  # the same job, resumed
    other = records.begin("job-a2", "a", "f", "m", "1")
    found = [records.get(ref) for ref in ("job-a1", first)]
    assert [r.id if r else None for r in found] == [again, first]  # a job: its newest run
    assert records.get("job-a") is None  # two jobs start so: ambiguous
    assert records.get("%") is None and records.get("job_a2") is None  # not wildcards
    assert records.get(other[:8]) is not None
    records.close()
