"""build_inputs: the tool's input document, and every refusal in one message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.jobs.errors import InvalidJob
from agent.jobs.inputs import build_inputs, check_extension, check_value
from agent.jobs.outcome import Reason
from agent.protocol.manifest import FunctionSchema

MODEL = Path("/w/in/bracket.STL")


def schema(**inputs: dict[str, Any]) -> FunctionSchema:
    return FunctionSchema.model_validate({"inputs": inputs})


def param(*validators: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "parameter", "validation_types": list(validators), "optional": optional}


def user_model(*validators: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "user_model", "validation_types": list(validators), "optional": optional}


MESH = schema(
    model=user_model("@extension:stl"),
    size=param("@number"),
    label=param("@string", optional=True),
    passes=param("@integer", optional=True),
)


def refusal(s: FunctionSchema, parameters: dict[str, Any], model: Path | None = MODEL) -> str:
    with pytest.raises(InvalidJob) as info:
        build_inputs(s, parameters, model)
    assert info.value.reason is Reason.INVALID_JOB
    return str(info.value)


def test_the_document_has_every_given_parameter_and_the_model() -> None:
    doc = build_inputs(MESH, {"size": 2.5, "label": "x"}, MODEL)
    assert doc == {
        "size": {"type": "parameter", "value": 2.5},
        "label": {"type": "parameter", "value": "x"},
        "model": {"type": "user_model", "value": str(MODEL)},
    }


def test_values_are_passed_through_untouched() -> None:
    s = schema(opts=param("@object"), items=param("@array"), flag=param("@boolean"))
    params: dict[str, Any] = {"opts": {"a": [1, {"b": None}]}, "items": [], "flag": False}
    doc = build_inputs(s, params, None)
    assert {name: entry["value"] for name, entry in doc.items()} == params


def test_all_problems_are_listed_in_one_message_with_what_is_accepted() -> None:
    message = refusal(MESH, {"label": 3, "passes": 1.5, "zeta": 1, "alpha": 2})
    assert message == (
        "missing required parameter(s): size; unknown parameter(s): alpha, zeta; "
        "parameter label: expected string, got number; "
        "parameter passes: expected integer, got number "
        "(this function accepts: size (@number), label (@string, optional), "
        "passes (@integer, optional))"
    )


def test_a_function_with_no_parameters_says_it_accepts_none() -> None:
    message = refusal(schema(model=user_model()), {"size": 1})
    assert message == "unknown parameter(s): size (this function accepts: none)"


def test_a_parameter_without_validators_accepts_anything_and_is_described_as_any() -> None:
    s = schema(anything=param(), other=param("@string"))
    assert build_inputs(s, {"anything": [None], "other": "x"}, None)["anything"]["value"] == [None]
    assert "anything (any)" in refusal(s, {"other": 1})


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_number(value: bool) -> None:
    message = refusal(MESH, {"size": value})
    assert message.startswith("parameter size: expected number, got boolean (")
    assert check_value(value, ["@integer"]) == "expected integer, got boolean"
    assert check_value(value, ["@boolean"]) is None


@pytest.mark.parametrize(
    ("value", "validators", "problem"),
    [
        (1, ["@number"], None),
        (1.5, ["@number"], None),
        (1, ["@integer"], None),
        (1.5, ["@integer"], "expected integer, got number"),
        ("1", ["@number"], "expected number, got string"),
        (None, ["@string"], "expected string, got null"),
        ({"a": 1}, ["@array"], "expected array, got object"),
        ([1], ["@object"], "expected object, got array"),
        ("x", ["@number", "@string"], None),
        ([1], ["@number", "@string"], "expected number or string, got array"),
        ("x", ["@number:min=0"], "expected number, got string"),  # arguments after ':'
    ],
)
def test_check_value(value: object, validators: list[str], problem: str | None) -> None:
    assert check_value(value, validators) == problem


@pytest.mark.parametrize("validators", [["@range:0:10"], ["@number", "@uuid"], ["@extension:stl"]])
def test_unknown_validators_accept_anything(validators: list[str]) -> None:
    assert check_value("not a number", validators) is None
    s = schema(p=param(*validators))
    assert build_inputs(s, {"p": "not a number"}, None) == {
        "p": {"type": "parameter", "value": "not a number"}
    }


def test_the_extension_check_ignores_case_and_a_leading_dot() -> None:
    assert check_extension("part.STL", ["@extension:stl"]) is None
    assert check_extension("part.stl", ["@extension:.STL"]) is None
    assert check_extension("part.step", ["@extension:stl", "@extension:STEP"]) is None
    assert check_extension("part.obj", []) is None
    assert check_extension("part.obj", ["@string"]) is None
    assert check_extension("part.obj", ["@extension:stl", "@extension:step"]) == (
        "model 'part.obj' is not a .stl or .step file"
    )
    assert check_extension("stl", ["@extension:stl"]) is not None  # no suffix at all


def test_a_model_with_the_wrong_extension_is_refused() -> None:
    message = refusal(MESH, {"size": 1}, Path("/w/in/bracket.obj"))
    assert message == "input model: model 'bracket.obj' is not a .stl file"


def test_an_optional_model_input_may_be_absent() -> None:
    s = schema(model=user_model(optional=True), size=param("@number"))
    assert build_inputs(s, {"size": 1}, None) == {"size": {"type": "parameter", "value": 1}}


def test_a_required_model_input_without_a_model_is_refused() -> None:
    message = refusal(MESH, {"size": 1}, None)
    assert message == "input model needs a model, and the job has none"


def test_a_second_required_model_input_is_refused() -> None:
    s = schema(first=user_model(), second=user_model())
    assert refusal(s, {}) == "input second needs a second model; a job carries one"


def test_an_optional_second_model_input_is_left_out() -> None:
    s = schema(first=user_model(), second=user_model(optional=True))
    assert build_inputs(s, {}, MODEL) == {"first": {"type": "user_model", "value": str(MODEL)}}


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("auth_info", "no credential was delivered for it (bind a stored credential"),
        ("user_link", "user_link inputs need link deliveries"),
    ],
)
def test_a_required_credential_or_link_input_is_refused(kind: str, why: str) -> None:
    s = schema(creds={"type": kind}, size=param("@number"))
    message = refusal(s, {"size": 1}, None)
    assert message.startswith(f"Function inputs ['creds'] not provided: {why}")


def test_a_delivered_credential_fills_its_auth_info_input(tmp_path: Path) -> None:
    s = schema(creds={"type": "auth_info"}, size=param("@number"))
    path = tmp_path / "auth" / "creds"
    doc = build_inputs(s, {"size": 1}, None, {"creds": path})
    assert doc["creds"] == {"type": "auth_info", "value": str(path)}


def test_an_optional_credential_input_is_left_out() -> None:
    s = schema(creds={"type": "auth_info", "optional": True}, size=param("@number"))
    assert build_inputs(s, {"size": 1}, None) == {"size": {"type": "parameter", "value": 1}}


def test_parameter_problems_are_reported_before_model_problems() -> None:
    message = refusal(MESH, {}, None)
    assert message.startswith("missing required parameter(s): size")


@pytest.mark.parametrize("validators", [[], ["@extension:pdf"]])
def test_the_model_goes_to_the_required_input_when_an_optional_one_comes_first(
    validators: list[str],
) -> None:
    s = schema(drawing=user_model(*validators, optional=True), main=user_model("@extension:stl"))
    assert build_inputs(s, {}, MODEL) == {"main": {"type": "user_model", "value": str(MODEL)}}
