"""The updates file's lines (pure parsing) and how it is read as a tool appends to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.jobs.monitor import UpdatesFile
from agent.runs.updates import MAX_LINE, BadUpdate, parse_update, status_message


def line(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_an_entry_with_everything() -> None:
    e = parse_update(line(level="error", message="m", tags={"a": 1, "b": None}, progress=12.5), 7)
    assert (e.time, e.level, e.message, e.progress) == (7, "ERROR", "m", 12.5)
    assert e.tags == {"a": 1, "b": None}


def test_ports_spelling_and_defaults() -> None:
    e = parse_update(line(logLevel="WARNING", log="careful"), 0)
    assert (e.level, e.message, e.tags, e.progress) == ("WARN", "careful", {}, None)
    assert parse_update(line(progress=100), 0).level == "INFO"
    nulls = parse_update(line(level="INFO", message=None, progress=3, tags=None), 0)
    assert (nulls.message, nulls.tags, nulls.progress) == ("", {}, 3)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (line(tags={"a": 1}), "has neither a message nor a progress"),
        (line(message=3), "message is not a string"),
        (line(message="m", level="LOUD"), "level is not one of DEBUG, INFO, WARN, ERROR"),
        (line(message="m", level=2), "level is not one of DEBUG, INFO, WARN, ERROR"),
        (line(progress=101), "progress is not a number from 0 to 100"),
        (line(progress=True), "progress is not a number from 0 to 100"),
        (b'{"progress": NaN}', "progress is not a number from 0 to 100"),
        (line(message="m", tags=["a"]), "tags is not an object of plain values"),
        (line(message="m", tags={"a": {"deep": 1}}), "tags is not an object of plain values"),
        (line(message="m", tags={str(n): n for n in range(33)}), "more than 32 tags"),
        (line(message="x" * MAX_LINE), "longer than 16 KiB"),
    ],
)
def test_what_is_not_an_update_says_why(raw: bytes, problem: str) -> None:
    with pytest.raises(BadUpdate) as e:
        parse_update(raw, 0)
    assert str(e.value).startswith(problem)


def test_a_long_message_is_cut() -> None:
    assert len(parse_update(line(message="y" * 5000), 0).message) == 4000


def test_the_status_message() -> None:
    assert status_message(40, "meshing") == "40% · meshing"
    assert status_message(12.5, None) == "12.5%"
    assert status_message(None, "only words") == "only words"
    assert len(status_message(1, "z" * 1000)) == 500


def test_lines_are_read_as_they_complete(tmp_path: Path) -> None:
    updates = UpdatesFile(tmp_path / "updates.jsonl")
    assert updates.read() == []  # not there yet: nothing, no error
    updates.create()
    with updates.path.open("ab") as f:
        f.write(b'{"message": "one"}\n{"mess')
        f.flush()
        assert updates.read() == [b'{"message": "one"}']
        f.write(b'age": "two"}\n\n   \n{"progress": 5}')
        f.flush()
        assert updates.read() == [b'{"message": "two"}']  # blank lines are skipped
        assert updates.read(final=True) == [b'{"progress": 5}']  # the tool ended: take the rest
    assert updates.lines == 3
    assert updates.path.stat().st_mode & 0o777 == 0o600


def test_a_runaway_line_is_bounded_and_refused(tmp_path: Path) -> None:
    updates = UpdatesFile(tmp_path / "updates.jsonl")
    updates.create()
    updates.path.write_bytes(b"x" * (5 * MAX_LINE))
    for _ in range(10):
        assert updates.read() == []
    (huge,) = updates.read(final=True)
    with pytest.raises(BadUpdate, match="longer than"):
        parse_update(huge, 0)
