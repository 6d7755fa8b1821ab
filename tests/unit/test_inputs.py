"""build_inputs: the tool's input document, where each input's value comes from, and every
refusal in one message (the validators themselves: test_validators.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.jobs.errors import InvalidJob
from agent.jobs.inputs import Delivered, Files, build_inputs, link_ids, places, wants_resource
from agent.jobs.outcome import Reason
from agent.jobs.validators import FileFacts, check_parameter
from agent.protocol.manifest import FunctionSchema

MODEL = Path("/w/in/bracket.STL")
LINK = "@extension:istari_{tool_key}_metadata"
ID = "3f0c2a4e-8d1b-4c55-9a0e-6b7f1d2c3e4a"


def facts(path: Path | str, content: bytes = b"") -> FileFacts:
    return FileFacts(Path(path), content[:65536], len(content))


def files(model: Path | None = MODEL, **links: Path) -> Files:
    return Files(facts(model) if model else None, {n: facts(p) for n, p in links.items()}, "gdrive")


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


def user_link(*validators: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "user_link", "validation_types": list(validators), "optional": optional}


def auth(*validators: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "auth_info", "validation_types": list(validators), "optional": optional}


def refusal(
    s: FunctionSchema, parameters: dict[str, Any], model: Path | None = MODEL, **links: Path
) -> str:
    with pytest.raises(InvalidJob) as info:
        build_inputs(s, parameters, files(model, **links))
    assert info.value.reason is Reason.INVALID_JOB
    return str(info.value)


def test_the_document_has_every_given_parameter_and_the_model() -> None:
    doc = build_inputs(MESH, {"size": 2.5, "label": "x"}, files())
    assert doc == {
        "size": {"type": "parameter", "value": 2.5},
        "label": {"type": "parameter", "value": "x"},
        "model": {"type": "user_model", "value": str(MODEL)},
    }


def test_values_are_passed_through_untouched() -> None:
    s = schema(opts=param("@object"), items=param("@array"), flag=param("@boolean"))
    params: dict[str, Any] = {"opts": {"a": [1, {"b": None}]}, "items": [], "flag": False}
    doc = build_inputs(s, params, files(None))
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
    message = refusal(schema(model=user_model("@extension:stl")), {"size": 1})
    assert message == "unknown parameter(s): size (this function accepts: none)"


def test_a_parameter_with_an_unknown_validator_accepts_anything() -> None:
    s = schema(anything=param("@uuid"), other=param("@string"))
    doc = build_inputs(s, {"anything": [None], "other": "x"}, files(None))
    assert doc["anything"]["value"] == [None]
    assert "anything (@uuid)" in refusal(s, {"other": 1})


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_number(value: bool) -> None:
    message = refusal(MESH, {"size": value})
    assert message.startswith("parameter size: expected number, got boolean (")
    assert check_parameter(value, ["@integer"]) == "expected integer, got boolean"
    assert check_parameter(value, ["@boolean"]) is None


@pytest.mark.parametrize("validators", [["@range:0:10"], ["@number", "@uuid"], ["@extension:stl"]])
def test_unknown_validators_accept_anything(validators: list[str]) -> None:
    s = schema(p=param(*validators))
    assert build_inputs(s, {"p": "not a number"}, files(None)) == {
        "p": {"type": "parameter", "value": "not a number"}
    }


def test_a_model_with_the_wrong_extension_is_refused() -> None:
    message = refusal(MESH, {"size": 1}, Path("/w/in/bracket.obj"))
    assert message == "input model: 'bracket.obj' is not a .stl file (the job's resource)"


def test_an_optional_model_input_may_be_absent() -> None:
    s = schema(model=user_model("@extension:stl", optional=True), size=param("@number"))
    assert build_inputs(s, {"size": 1}, files(None)) == {"size": {"type": "parameter", "value": 1}}


def test_a_required_model_input_without_a_model_is_refused() -> None:
    message = refusal(MESH, {"size": 1}, None)
    assert message == "input model needs a model, and the job has none"


def test_a_second_required_model_input_is_refused() -> None:
    s = schema(first=user_model("@extension:stl"), second=user_model("@extension:stl"))
    assert refusal(s, {}) == (
        "input second needs a second model; a job carries one (it went to input first)"
    )


def test_an_optional_second_model_input_is_left_out() -> None:
    s = schema(
        first=user_model("@extension:stl"), second=user_model("@mime_type:*/*", optional=True)
    )
    assert build_inputs(s, {}, files()) == {"first": {"type": "user_model", "value": str(MODEL)}}


def test_a_required_credential_input_without_a_delivery_is_refused() -> None:
    s = schema(creds=auth("@token:svc"), size=param("@number"))
    message = refusal(s, {"size": 1}, None)
    assert message.startswith(
        "Function inputs ['creds'] not provided: no credential was delivered for it (bind a"
    )


def test_a_delivered_credential_fills_its_auth_info_input(tmp_path: Path) -> None:
    s = schema(creds=auth("@token:svc"), size=param("@number"))
    path = tmp_path / "auth" / "creds"
    doc = build_inputs(s, {"size": 1}, files(None), {"creds": Delivered(path, "token")})
    assert doc["creds"] == {"type": "auth_info", "value": str(path)}


def test_a_credential_of_another_auth_type_is_refused_saying_both(tmp_path: Path) -> None:
    s = schema(creds=auth("@jwt:svc", "@oauth2:svc"))
    with pytest.raises(InvalidJob) as info:
        build_inputs(s, {}, files(None), {"creds": Delivered(tmp_path / "c", "basic")})
    assert str(info.value) == (
        "input creds: a basic credential was delivered; this input takes jwt or oauth2"
    )


def test_an_optional_credential_input_is_left_out() -> None:
    s = schema(creds=auth("@token:svc", optional=True), size=param("@number"))
    assert build_inputs(s, {"size": 1}, files(None)) == {"size": {"type": "parameter", "value": 1}}


def test_parameter_problems_are_reported_before_model_problems() -> None:
    message = refusal(MESH, {}, None)
    assert message.startswith("missing required parameter(s): size")


@pytest.mark.parametrize("validators", [["@mime_type:*/*"], ["@extension:pdf"]])
def test_the_model_goes_to_the_required_input_when_an_optional_one_comes_first(
    validators: list[str],
) -> None:
    s = schema(drawing=user_model(*validators, optional=True), main=user_model("@extension:stl"))
    doc = build_inputs(s, {}, files())
    assert doc == {"main": {"type": "user_model", "value": str(MODEL)}}


# -- user_link inputs, and which input the job's resource fills -------------------------------

DECK = Path("/w/in/deck.istari_gdrive_metadata_presentation")
SLIDES = schema(part=user_model("@extension:stl", optional=True), sheet=user_link(LINK))


def test_a_metadata_resource_fills_the_user_link_input_it_fits() -> None:
    doc = build_inputs(SLIDES, {}, files(DECK))
    assert doc == {"sheet": {"type": "user_link", "value": str(DECK)}}


def test_the_resource_goes_to_the_first_required_input_it_fits_model_or_link() -> None:
    s = schema(part=user_model("@extension:stl"), sheet=user_link(LINK))
    # The resource fits the link, not the model: the model input is then the one left unfilled.
    assert refusal(s, {}, DECK) == (
        "input part needs a second model; a job carries one (it went to input sheet)"
    )
    # A model file fills the model input; the link needs an id in the parameters.
    assert refusal(s, {}, MODEL).startswith(
        "Function inputs ['sheet'] not provided: give the id of a model or an artifact for it "
        'in the parameters ("sheet": "<uuid>")'
    )


def test_a_link_given_by_id_fills_its_input_and_the_resource_fills_the_model() -> None:
    s = schema(part=user_model("@extension:stl"), sheet=user_link(LINK))
    doc = build_inputs(s, {"sheet": "model-7"}, files(MODEL, sheet=DECK))
    assert doc == {
        "part": {"type": "user_model", "value": str(MODEL)},
        "sheet": {"type": "user_link", "value": str(DECK)},
    }


def test_a_link_given_by_id_with_the_wrong_extension_is_refused_naming_all() -> None:
    message = refusal(SLIDES, {"sheet": "x"}, None, sheet=Path("/w/in/notes.txt"))
    assert message == (
        "input sheet: 'notes.txt' is not a .istari_gdrive_metadata_<kind> file "
        "(the resource named for it in the parameters)"
    )


def test_a_resource_that_fits_no_input_is_refused_against_the_first_required_one() -> None:
    other = Path("/w/in/deck.istari_other_metadata_presentation")
    assert refusal(SLIDES, {}, other) == (
        "input sheet: 'deck.istari_other_metadata_presentation' is not a "
        ".istari_gdrive_metadata_<kind> file (the job's resource)"
    )


def test_the_resource_is_not_passed_when_every_file_input_is_given_by_id() -> None:
    s = schema(sheet=user_link(LINK))
    doc = build_inputs(s, {"sheet": "x"}, files(MODEL, sheet=DECK))
    assert doc == {"sheet": {"type": "user_link", "value": str(DECK)}}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3, "a JSON number"),
        (None, "a JSON null"),
        ("", "''"),
        ("deck-7", "'deck-7'"),
        (["id"], "a JSON array"),
    ],
)
def test_a_link_id_must_be_a_uuid(value: object, shown: str) -> None:
    with pytest.raises(InvalidJob) as info:
        link_ids(SLIDES, {"sheet": value})
    assert str(info.value) == (
        "input sheet is a user_link: the parameters give it by the id of a model or an "
        f'artifact ("sheet": "<uuid>"), not {shown}'
    )


def test_link_ids_are_the_user_link_inputs_the_parameters_name() -> None:
    s = schema(sheet=user_link(LINK), other=user_link(LINK, optional=True), size=param("@number"))
    given = {"sheet": f" {ID} ", "size": 3}
    assert link_ids(s, given) == {"sheet": ID}


def test_links_are_listed_among_what_the_function_accepts() -> None:
    message = refusal(SLIDES, {"shet": "x"}, DECK)
    assert message == (
        "unknown parameter(s): shet (this function accepts: sheet (a model or artifact id, "
        "user_link))"
    )


def test_the_resource_is_wanted_while_a_file_input_is_left_for_it() -> None:
    assert wants_resource(SLIDES, set())
    assert wants_resource(SLIDES, {"sheet"})  # the optional model input is still open
    assert not wants_resource(schema(sheet=user_link(LINK)), {"sheet"})
    assert not wants_resource(schema(size=param("@number")), set())


def test_each_file_keeps_its_name_and_a_taken_name_moves_to_the_input_folder() -> None:
    assert places("part.txt", {"sheet": "a.istari_x_metadata_s"}) == (
        Path("part.txt"),
        {"sheet": Path("a.istari_x_metadata_s")},
    )
    same = "deck.istari_x_metadata_p"
    assert places(same, {"sheet": same, "../other": same}) == (
        Path(same),
        {"sheet": Path("sheet", same), "../other": Path("other", same)},
    )
    assert places(None, {"a": "x", "b": "x"}) == (None, {"a": Path("x"), "b": Path("b", "x")})
