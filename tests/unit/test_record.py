"""The pure parts of `istari-agent record`: KEY=VALUE pairs, delivery steps, exit codes, cursors."""

from __future__ import annotations

import pytest

from agent.localregistry.api.workflow_list import decode_cursor, encode_cursor
from agent.workflowlog.model import (
    Blob,
    CreateEntry,
    CreateOutput,
    Done,
    FindEntry,
    Output,
    Record,
    next_step,
    parse_config,
)
from agent.workflowlog.report import KEPT, exit_code

URL = "http://registry.example"


def _output(name: str) -> Output:
    blob = Blob(sha="a" * 96, salt="b" * 32, size=3)
    return Output(path=f"/tmp/{name}", name=name, content=blob, properties=blob, mtime_ns=1)


def _record(outputs: int = 2) -> Record:
    return Record(
        id="r1",
        created=1.0,
        registry_url=URL,
        system_id="s1",
        title="t",
        status="SUCCESS",
        outputs=tuple(_output(f"o{i}.txt") for i in range(outputs)),
    )


# -- --config KEY=VALUE -----------------------------------------------------------------------


def test_config_pairs_keep_their_order_and_text() -> None:
    parsed = parse_config(["b=2", "a=x=y", "empty=", " spaced =  v "])
    assert list(parsed.items()) == [("b", "2"), ("a", "x=y"), ("empty", ""), ("spaced", "  v ")]


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        (["novalue"], "KEY=VALUE"),
        (["=value"], "KEY=VALUE"),
        (["  =value"], "KEY=VALUE"),
        (["k=1", "k=2"], "given twice"),
    ],
)
def test_config_pairs_that_are_refused(items: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_config(items)


# -- delivery steps -----------------------------------------------------------------------------


def test_delivery_creates_each_output_then_the_entry_then_is_done() -> None:
    r = _record(2)
    assert next_step(r) == CreateOutput(0)
    r = r.with_output(0, "out-0")
    assert next_step(r) == CreateOutput(1)
    r = r.with_output(1, "out-1")
    assert next_step(r) == CreateEntry()
    r = r.entry_sending()
    assert next_step(r) == FindEntry()  # an answer may have been lost: look before creating
    r = r.with_entry("entry")
    assert next_step(r) == Done()
    assert r.delivered
    assert [o.output_id for o in r.outputs] == ["out-0", "out-1"]


def test_a_record_without_outputs_goes_straight_to_its_entry() -> None:
    assert next_step(_record(0)) == CreateEntry()


def test_outputs_already_created_are_not_created_again() -> None:
    r = _record(3).with_output(1, "out-1")
    assert next_step(r) == CreateOutput(0)
    assert next_step(r.with_output(0, "out-0")) == CreateOutput(2)


def test_the_entry_is_not_sent_before_every_output_exists() -> None:
    with pytest.raises(ValueError, match="every output"):
        _record(1).entry_sending()


def test_a_failure_counts_the_attempt_and_keeps_progress() -> None:
    r = _record(2).with_output(0, "out-0").failed("unreachable")
    assert (r.attempts, r.last_error) == (1, "unreachable")
    assert next_step(r) == CreateOutput(1)
    assert r.failed("again").attempts == 2


def test_a_record_survives_its_json_form() -> None:
    r = _record(2).with_output(0, "out-0").failed("x")
    assert Record.model_validate_json(r.model_dump_json()) == r


def test_a_record_not_started_may_go_to_another_registry_but_a_started_one_may_not() -> None:
    fresh = _record(1)
    assert fresh.sendable_to("http://elsewhere")
    assert fresh.retargeted("http://elsewhere").registry_url == "http://elsewhere"
    started = fresh.with_output(0, "out-0")
    assert started.sendable_to(URL + "/")
    assert not started.sendable_to("http://elsewhere")
    with pytest.raises(ValueError, match="partly delivered"):
        started.retargeted("http://elsewhere")
    assert not _record(0).entry_sending().sendable_to("http://elsewhere")


# -- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "command", "code"),
    [
        (True, None, 0),
        (False, None, KEPT),
        (True, 0, 0),
        (False, 0, KEPT),
        (True, 3, 3),
        (False, 3, 3),  # the command's failure is what a script must see first
    ],
)
def test_exit_codes(delivered: bool, command: int | None, code: int) -> None:
    assert exit_code(delivered, command) == code


# -- cursors of the local registry's entry listing ----------------------------------------------


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    for bad in ["", "xyz", encode_cursor(1)[:-1] + "!", "YWZ0ZXI6", "YWZ0ZXI6LTE"]:
        with pytest.raises(ValueError, match="cursor"):
            decode_cursor(bad)
