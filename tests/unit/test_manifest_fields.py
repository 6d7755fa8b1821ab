"""Each manifest field's rule (the official schema's), passing and failing, and the rules across
fields: OS agreement between module, functions and scripts, and tool_key with tool_versions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.protocol.manifest import Manifest, parse_manifest
from tests.unit.test_manifest import PATH, manifest_doc, refused, variant

GOOD_SCRIPT = {
    "operating_systems": ["Ubuntu 22.04"],
    "install": "scripts/install.sh",
    "build": {"command": "scripts/build.sh", "output_path": "."},
    "test_unit": "scripts/test.sh",
    "clean": "scripts/clean.sh",
}


def parsed(**fields: Any) -> Manifest:
    doc = manifest_doc()
    doc.update(fields)
    return parse_manifest(doc, PATH)


def test_the_real_manifest_shape_parses() -> None:
    m = parsed(
        module_type="function",
        module_checksum="",
        internal=True,
        tool_key="claude",
        tool_display_name="Claude",
        authors=[{"name": "A", "email": "a@example.com", "group": "@istari:ai_hub"}],
        dependencies=[{"name": "python3", "version": ">=3.11", "tool_type": "auxiliary_tool"}],
        dev_dependencies=[{"name": "pytest", "version": "8", "tool_type": "auxiliary_tool"}],
        scripts=[GOOD_SCRIPT],
        agent_version=">=9.0.0",
    )
    assert m.internal is True
    assert m.authors[0].group == "@istari:ai_hub"
    assert m.dependencies is not None and m.dependencies[0].tool_type == "auxiliary_tool"
    assert m.scripts is not None
    assert m.scripts[0].paths() == {
        "install": "scripts/install.sh",
        "clean": "scripts/clean.sh",
        "test_unit": "scripts/test.sh",
        "build.command": "scripts/build.sh",
    }


def test_module_type_authentication_is_accepted_and_others_refused() -> None:
    assert parsed(module_type="authentication").module_type == "authentication"
    assert refused(lambda d: d.update(module_type="plugin")).field == "module_type"


@pytest.mark.parametrize("checksum", ["", "a" * 64, "ABCDEF0123456789" * 4])
def test_module_checksum_is_empty_or_a_sha256(checksum: str) -> None:
    assert parsed(module_checksum=checksum).module_checksum == checksum


@pytest.mark.parametrize("checksum", ["abc", "g" * 64, "sha256:" + "a" * 64, 5])
def test_a_malformed_module_checksum_is_refused(checksum: object) -> None:
    assert refused(lambda d: d.update(module_checksum=checksum)).field == "module_checksum"


@pytest.mark.parametrize("value", ["true", 1, None])
def test_internal_must_be_a_boolean(value: object) -> None:
    assert refused(lambda d: d.update(internal=value)).field == "internal"


@pytest.mark.parametrize(
    ("author", "field"),
    [
        ({"email": "a@b.c"}, "authors.0.name"),
        ({"name": "A"}, "authors.0.email"),
        ({"name": "A", "email": 7}, "authors.0.email"),
        ({"name": "A", "email": "a@b.c", "group": "ai_hub"}, "authors.0.group"),
    ],
)
def test_authors_follow_contributor_info(author: dict[str, Any], field: str) -> None:
    assert refused(lambda d: d.update(authors=[author])).field == field


@pytest.mark.parametrize("key", ["dependencies", "dev_dependencies"])
@pytest.mark.parametrize(
    ("dep", "field"),
    [
        ({"version": "1", "tool_type": "auth"}, "0.name"),
        ({"name": "x", "tool_type": "auth"}, "0.version"),
        ({"name": "x", "version": "1"}, "0.tool_type"),
        ({"name": "x", "version": "1", "tool_type": "library"}, "0.tool_type"),
        ({"name": "x", "version": "1", "tool_type": "auth", "url": ""}, "0.url"),
    ],
)
def test_dependencies_follow_the_schema(key: str, dep: dict[str, Any], field: str) -> None:
    assert refused(lambda d: d.update({key: [dep]})).field == f"{key}.{field}"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.pop("operating_systems"), "scripts.0.operating_systems"),
        (lambda s: s.update(build={"command": "b.sh"}), "scripts.0.build.output_path"),
        (lambda s: s.update(install=3), "scripts.0.install"),
    ],
)
def test_scripts_follow_script_info(change: Any, field: str) -> None:
    script = dict(GOOD_SCRIPT)
    change(script)
    assert refused(lambda d: d.update(scripts=[script])).field == field


@pytest.mark.parametrize("key", ["my_tool", "tool-2", "abc123"])
def test_good_tool_keys(key: str) -> None:
    assert parsed(tool_key=key).tool_key == key


@pytest.mark.parametrize("key", ["MyTool", "my tool", "tool.v2", ""])
def test_bad_tool_keys(key: str) -> None:
    assert refused(lambda d: d.update(tool_key=key)).field == "tool_key"


@pytest.mark.parametrize("versions", [None, []])
def test_tool_key_needs_tool_versions(versions: list[str] | None) -> None:
    error = refused(lambda d: d.update(tool_key="cad", tool_versions=versions))
    assert error.field == "tool_versions"
    assert "required (at least one) when tool_key is set" in error.problem


def test_a_function_os_the_module_does_not_list_is_refused() -> None:
    error = refused(lambda d: variant(d).update(operating_systems=["RHEL 9", "Windows 11"]))
    assert error.field == "functions.@acme:mesh.0.operating_systems"
    assert error.problem.startswith("Windows 11 not in the module's operating_systems")


def test_function_oses_need_no_module_list() -> None:
    doc = manifest_doc()
    del doc["operating_systems"]
    variant(doc)["operating_systems"] = ["Windows 11"]
    assert parse_manifest(doc, PATH).functions["@acme:mesh"][0].operating_systems == ["Windows 11"]


def test_a_script_os_the_module_does_not_list_is_refused() -> None:
    script = {**GOOD_SCRIPT, "operating_systems": ["macOS 15"]}
    error = refused(lambda d: d.update(scripts=[script]))
    assert error.field == "scripts.0.operating_systems"


def test_the_registry_side_model_refuses_disagreeing_oses_too() -> None:
    """The local registry validates published manifests with the model alone."""
    doc = manifest_doc()
    variant(doc)["operating_systems"] = ["Windows 11"]
    with pytest.raises(ValidationError, match=r"functions\.@acme:mesh\.0\.operating_systems"):
        Manifest.model_validate(doc)
