"""Run records, the storage side: steps, retention, and what inputs are kept."""

from __future__ import annotations

from pathlib import Path

from agent.runs.model import RunFilter, describe_inputs
from agent.runs.records import RunRecords


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
