"""parse_manifest: what the agent relies on is checked, and errors name path, field, problem."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from agent.protocol.manifest import InputType, Manifest, ManifestError, parse_manifest

PATH = "/opt/mods/cad/module_manifest.json"


def manifest_doc() -> dict[str, Any]:
    return {
        "module_key": "@acme:cad",
        "module_version": "1.2.3",
        "operating_systems": ["Ubuntu 22.04", "RHEL 9"],
        "tool_versions": ["7"],
        "authors": [{"name": "someone", "email": "someone@example.com"}],
        "unknown_key": {"any": "thing"},  # unknown keys are ignored
        "functions": {
            "@acme:mesh": [
                {
                    "entrypoint": "bin/mesh.py",
                    "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                    "operating_systems": ["RHEL 9"],
                    "function_schema": {
                        "inputs": {
                            "model": {"type": "user_model", "validation_types": ["@extension:stl"]},
                            "size": {"type": "parameter", "validation_types": ["@number"]},
                        },
                        "outputs": [{"name": "mesh", "type": "file", "required": True}],
                    },
                },
                {
                    "entrypoint": "mesh.sh",
                    "run_command": "bash {entrypoint} {input_file}",
                    "function_schema": {"inputs": {}},
                },
            ]
        },
    }


def variant(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["functions"]["@acme:mesh"][0]
    return first


def refused(change: Callable[[dict[str, Any]], object]) -> ManifestError:
    doc = manifest_doc()
    change(doc)
    with pytest.raises(ManifestError) as info:
        parse_manifest(doc, PATH)
    error = info.value
    assert str(error) == f"{PATH}: {error.field}: {error.problem}"
    assert error.path == PATH
    return error


def test_a_good_manifest_parses() -> None:
    m = parse_manifest(manifest_doc(), PATH)
    assert isinstance(m, Manifest)
    assert m.key() == "@acme:cad"
    assert m.module_version == "1.2.3"
    assert m.module_type == "function"
    first, second = m.functions["@acme:mesh"]
    assert first.function_schema.inputs["model"].type is InputType.USER_MODEL
    assert first.function_schema.outputs[0].name == "mesh"
    assert m.variant_oses(first) == ["RHEL 9"]  # its own list
    assert m.variant_oses(second) == ["Ubuntu 22.04", "RHEL 9"]  # the module's
    assert m.variant_tools(second) == ["7"]


def test_the_deprecated_module_name_is_accepted_as_the_key() -> None:
    doc = manifest_doc()
    del doc["module_key"]
    doc["module_name"] = "@acme:old_name"
    assert parse_manifest(doc, PATH).key() == "@acme:old_name"


def test_module_key_wins_over_module_name() -> None:
    doc = manifest_doc()
    doc["module_name"] = "@acme:old_name"
    assert parse_manifest(doc, PATH).key() == "@acme:cad"


def test_neither_key_is_refused() -> None:
    error = refused(lambda d: d.pop("module_key"))
    assert error.field == "module_key"
    assert error.problem == "required (or the deprecated module_name)"


def test_a_malformed_module_key_is_refused() -> None:
    error = refused(lambda d: d.update(module_key="acme-cad"))
    assert error.field == "module_key"
    assert "pattern" in error.problem


def test_missing_module_version() -> None:
    error = refused(lambda d: d.pop("module_version"))
    assert (error.field, error.problem) == ("module_version", "required")


@pytest.mark.parametrize("version", ["1.0", "one", "1.0.0.0", ""])
def test_bad_module_version(version: str) -> None:
    assert refused(lambda d: d.update(module_version=version)).field == "module_version"


@pytest.mark.parametrize("version", ["1.0.0", "v2.3.4", "1.0.0-rc.1", "1.0.0+build.5"])
def test_good_module_versions(version: str) -> None:
    doc = manifest_doc()
    doc["module_version"] = version
    assert parse_manifest(doc, PATH).module_version == version


@pytest.mark.parametrize("name", ["mesh", "@acme", "acme:mesh", "@acme:", "@1x:mesh"])
def test_bad_function_key(name: str) -> None:
    error = refused(lambda d: d.update(functions={name: d["functions"]["@acme:mesh"]}))
    assert error.field == "functions"
    assert error.problem == f"function name {name!r} must look like @scope:name"


def test_empty_functions() -> None:
    error = refused(lambda d: d.update(functions={}))
    assert error.field == "functions"
    assert "at least 1 item" in error.problem


def test_function_without_variants() -> None:
    error = refused(lambda d: d.update(functions={"@acme:mesh": []}))
    assert (error.field, error.problem) == ("functions", "function '@acme:mesh' has no variants")


def test_unknown_placeholder_is_named() -> None:
    error = refused(lambda d: variant(d).update(run_command="python3 {entrypoint} {inputs}"))
    assert error.field == "functions.@acme:mesh.0.run_command"
    assert error.problem.startswith("run_command uses unknown placeholder(s) {inputs}; known: ")
    assert "Value error" not in error.problem


def test_run_command_without_entrypoint_is_refused() -> None:
    error = refused(lambda d: variant(d).update(run_command="python3 tool.py {input_file}"))
    assert error.field == "functions.@acme:mesh.0.run_command"
    assert "{entrypoint}" in error.problem


@pytest.mark.parametrize(
    "entrypoint", ["/usr/bin/mesh", "../mesh.py", "bin/../../mesh.py", "..\\mesh.py", "\\abs"]
)
def test_entrypoint_must_stay_inside_the_module(entrypoint: str) -> None:
    error = refused(lambda d: variant(d).update(entrypoint=entrypoint))
    assert error.field == "functions.@acme:mesh.0.entrypoint"
    assert error.problem == "must be a path inside the module directory (relative, no '..')"


@pytest.mark.parametrize("entrypoint", ["mesh.py", "bin/mesh.py", "./mesh.py", "a..b/x"])
def test_relative_entrypoints_are_accepted(entrypoint: str) -> None:
    doc = manifest_doc()
    variant(doc)["entrypoint"] = entrypoint
    assert parse_manifest(doc, PATH).functions["@acme:mesh"][0].entrypoint == entrypoint


def test_missing_field_inside_a_variant_is_located() -> None:
    error = refused(lambda d: variant(d).pop("function_schema"))
    assert (error.field, error.problem) == ("functions.@acme:mesh.0.function_schema", "required")


def test_bad_input_type_is_located() -> None:
    def number_type(d: dict[str, Any]) -> None:
        variant(d)["function_schema"]["inputs"]["size"]["type"] = "number"

    error = refused(number_type)
    assert error.field == "functions.@acme:mesh.0.function_schema.inputs.size.type"


def test_not_an_object_at_all() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(["not", "a", "manifest"], PATH)
    assert info.value.field == "(top level)"


def test_parsing_does_not_change_the_document() -> None:
    doc = manifest_doc()
    before = copy.deepcopy(doc)
    parse_manifest(doc, PATH)
    assert doc == before


@pytest.mark.parametrize("absent", [True, False])
@pytest.mark.parametrize(
    ("name", "kind", "example"),
    [
        ("size", "parameter", '["@string"] for a parameter input'),
        ("model", "user_model", '["@extension:stl"] for a user_model input'),
    ],
)
def test_an_input_needs_at_least_one_validator(
    absent: bool, name: str, kind: str, example: str
) -> None:
    def empty(d: dict[str, Any]) -> None:
        spec = variant(d)["function_schema"]["inputs"][name]
        if absent:
            del spec["validation_types"]
        else:
            spec["validation_types"] = []

    error = refused(empty)
    assert error.field == f"functions.@acme:mesh.0.function_schema.inputs.{name}.validation_types"
    assert error.problem == (
        "must name at least one validator (the platform requires one); "
        f'add one, e.g. {example} (see docs/agent.md, "Inputs and validators")'
    )
    assert kind in error.problem


@pytest.mark.parametrize(
    ("kind", "example"),
    [("auth_info", "@token:<service>"), ("user_link", "@extension:istari_{tool_key}_metadata")],
)
def test_the_suggested_validator_fits_the_input_type(kind: str, example: str) -> None:
    def add(d: dict[str, Any]) -> None:
        variant(d)["function_schema"]["inputs"]["extra"] = {"type": kind}

    error = refused(add)
    assert error.field.endswith(".inputs.extra.validation_types")
    assert f'e.g. ["{example}"] for a {kind} input' in error.problem


def test_an_input_of_an_unknown_type_is_refused_for_its_type_first() -> None:
    def bad(d: dict[str, Any]) -> None:
        variant(d)["function_schema"]["inputs"]["extra"] = {"type": "number"}

    assert refused(bad).field.endswith(".inputs.extra.type")


def test_any_validator_string_satisfies_the_rule() -> None:
    doc = manifest_doc()
    variant(doc)["function_schema"]["inputs"]["size"]["validation_types"] = ["@something:new"]
    inputs = parse_manifest(doc, PATH).functions["@acme:mesh"][0].function_schema.inputs
    assert inputs["size"].validation_types == ["@something:new"]
