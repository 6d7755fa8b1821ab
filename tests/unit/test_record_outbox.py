"""The record outbox on a real directory: private modes, atomic saves, listing, locking."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agent.protocol.content import digest_file
from agent.workflowlog.outbox import Outbox, OutboxError, RecordBusy
from agent.workflowlog.prepare import (
    CONFIG_NAME,
    RecordRefused,
    Run,
    build,
    check_outputs,
    config_document,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_built_record_is_private_and_names_the_bytes_it_will_send(tmp_path: Path) -> None:
    out = tmp_path / "results.xml"
    out.write_text("<ok/>")
    outbox = Outbox(tmp_path / "state")
    outbox.ensure()
    run = Run(system_id="s", status="SUCCESS", title="t", outputs=(out,), config={"k": "v"})
    record = build(outbox, "rec1", "http://r/", run, created=5.0)

    assert record.registry_url == "http://r"
    assert [o.name for o in record.outputs] == ["results.xml", CONFIG_NAME]
    first, config = record.outputs
    assert digest_file(out, first.content.salt).sha == first.content.sha
    assert not first.kept and config.kept
    assert Path(config.path).read_bytes() == config_document({"k": "v"})
    props = json.loads((outbox.root / "rec1" / "files" / "properties-0.json").read_text())
    assert (props["file_name"], props["size"]) == ("results.xml", 5)

    assert mode(outbox.root.parent) == 0o700
    for d in [outbox.root, outbox.root / "rec1", outbox.root / "rec1" / "files"]:
        assert mode(d) == 0o700, d
    for f in (outbox.root / "rec1").rglob("*"):
        if f.is_file():
            assert mode(f) == 0o600, f
    assert outbox.load("rec1") == record


def test_pending_lists_saved_records_oldest_first_and_skips_half_written_ones(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path)
    outbox.ensure()
    build(outbox, "late", "http://r", Run(system_id="s", status="FAILED"), created=9.0)
    build(outbox, "early", "http://r", Run(system_id="s", status="FAILED"), created=1.0)
    outbox.file_path("cut-short", "command.log").write_text("a run killed before its record")
    assert [r.id for r in outbox.pending()] == ["early", "late"]
    assert outbox.find("ea").id == "early"
    with pytest.raises(OutboxError, match="no record"):
        outbox.find("zz")
    outbox.remove("early")
    assert [r.id for r in outbox.pending()] == ["late"]


def test_an_ambiguous_prefix_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.ensure()
    for rid in ("abc1", "abc2"):
        build(outbox, rid, "http://r", Run(system_id="s", status="FAILED"), created=1.0)
    with pytest.raises(OutboxError, match="2 records"):
        outbox.find("abc")


def test_a_claimed_record_is_busy_for_a_second_claim(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.ensure()
    build(outbox, "r", "http://r", Run(system_id="s", status="FAILED"), created=1.0)
    # flock locks are per open file description: a second open conflicts, as another
    # process's would.
    with outbox.claim("r"), pytest.raises(RecordBusy), outbox.claim("r"):
        pass
    with outbox.claim("r"):
        pass
    outbox.remove("r")
    with pytest.raises(OutboxError, match="no longer"), outbox.claim("r"):
        pass


def test_outputs_that_cannot_be_sent_are_all_named(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("x")
    with pytest.raises(RecordRefused) as caught:
        check_outputs((good, tmp_path / "missing.txt", tmp_path))
    assert "missing.txt: No such file" in str(caught.value)
    assert f"{tmp_path}: not a regular file" in str(caught.value)
    assert check_outputs((good,)) == (good.resolve(),)


def test_an_outbox_that_cannot_be_created_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutboxError, match="cannot use the record outbox"):
        Outbox(blocker / "state").ensure()
