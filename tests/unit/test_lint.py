"""lint: every problem of a module in one pass, each located and with a fix; and zero errors
over every manifest this repository ships (examples/ and the test modules)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.identity import REPORTED_AGENT_VERSION
from agent.modules.checksum import module_checksum
from agent.modules.lint import Problem, errors_only, lint
from tests.support import compat, registry
from tests.tools import module
from tests.tools.shmodule import ShellModule

EXAMPLES = Path(__file__).parents[2] / "examples" / "modules"
HOST = "Ubuntu 22.04"


def clean_doc() -> dict[str, Any]:
    """A manifest the platform's schema and this agent both accept, with nothing to warn of."""
    return {
        "module_key": "@acme:cad",
        "module_version": "1.0.0",
        "module_type": "function",
        "module_checksum": "",
        "internal": False,
        "tool_key": "cad",
        "tool_display_name": "CAD",
        "tool_versions": ["7"],
        "operating_systems": [HOST],
        "agent_version": ">=9.0.0",
        "authors": [{"name": "A", "email": "a@example.com"}],
        "scripts": [{"operating_systems": [HOST], "install": "scripts/install.sh",
                     "build": {"command": "scripts/build.sh --release", "output_path": "."}}],
        "functions": {
            "@acme:mesh": [
                {
                    "entrypoint": "mesh.py",
                    "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                    "operating_systems": [HOST],
                    "tool_versions": ["7"],
                    "function_schema": {"inputs": {}},
                }
            ]
        },
    }  # fmt: skip


def install(tmp_path: Path, doc: dict[str, Any]) -> Path:
    d = tmp_path / "cad"
    (d / "scripts").mkdir(parents=True, exist_ok=True)
    for name in ("mesh.py", "scripts/install.sh", "scripts/build.sh"):
        (d / name).write_text("#\n")
    (d / "module_manifest.json").write_text(json.dumps(doc))
    return d


def fields(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.field, p.severity) for p in problems]


def test_a_clean_module_has_no_problems(tmp_path: Path) -> None:
    assert lint(install(tmp_path, clean_doc()), REPORTED_AGENT_VERSION, HOST) == []


def test_four_different_problems_come_in_one_pass(tmp_path: Path) -> None:
    doc = clean_doc()
    doc["module_version"] = "one"  # schema
    doc["authors"] = [{"name": "A"}]  # schema, in a sub-object
    doc["functions"]["@acme:mesh"][0]["entrypoint"] = "gone.py"  # a file
    doc["agent_version"] = ">=99.0.0"  # leaves this agent out
    d = install(tmp_path, doc)

    problems = lint(d, REPORTED_AGENT_VERSION, HOST)

    assert fields(problems) == [
        ("module_version", "error"),
        ("authors.0.email", "error"),
        ("functions.@acme:mesh.0.entrypoint", "error"),
        ("agent_version", "error"),
    ]
    assert {p.path for p in problems} == {str(d / "module_manifest.json")}
    assert problems[1].problem == "required"
    assert problems[1].fix.startswith("add email:")
    assert problems[2].problem == f"file not found: {d / 'gone.py'}"
    assert "leaves out this agent's version" in problems[3].problem
    assert all(p.fix for p in problems)


def test_rules_across_fields_files_and_checksum_all_come_together(tmp_path: Path) -> None:
    doc = clean_doc()
    doc["functions"]["@acme:mesh"][0]["operating_systems"] = [HOST, "RHEL 9"]
    doc["scripts"][0]["operating_systems"] = ["macOS 15"]
    doc["scripts"][0]["install"] = "../outside.sh"
    doc["scripts"][0]["build"]["command"] = "scripts/missing.sh"
    doc["module_checksum"] = "0" * 64
    doc["dependencies"] = [{"name": "@acme:base", "version": "soon", "tool_type": "istari_module"}]
    problems = lint(install(tmp_path, doc), REPORTED_AGENT_VERSION, HOST)
    assert fields(problems) == [
        ("functions.@acme:mesh.0.operating_systems", "error"),
        ("scripts.0.operating_systems", "error"),
        ("dependencies.0.version", "error"),
        ("scripts.0.install", "error"),
        ("scripts.0.build.command", "error"),
        ("module_checksum", "error"),
    ]
    assert "istari-agent modules checksum" in problems[-1].fix


def test_a_matching_checksum_is_no_problem(tmp_path: Path) -> None:
    d = install(tmp_path, clean_doc())
    doc = clean_doc() | {"module_checksum": module_checksum(d)}
    (d / "module_manifest.json").write_text(json.dumps(doc))
    assert lint(d, REPORTED_AGENT_VERSION, HOST) == []


def test_what_the_platform_wants_and_this_agent_tolerates_is_a_warning(tmp_path: Path) -> None:
    doc = clean_doc()
    for key in ("module_checksum", "internal", "authors", "tool_display_name"):
        del doc[key]
    del doc["functions"]["@acme:mesh"][0]["tool_versions"]  # the "both levels" gotcha
    doc["operating_systems"] = [HOST, "RHEL 9"]  # no function runs on RHEL 9
    problems = lint(install(tmp_path, doc), REPORTED_AGENT_VERSION, HOST)
    assert errors_only(problems) == []
    assert fields(problems) == [
        ("operating_systems", "warning"),
        ("functions.*.tool_versions", "warning"),
        ("module_checksum", "warning"),
        ("internal", "warning"),
        ("tool_display_name", "warning"),
        ("authors", "warning"),
    ]


def test_an_unknown_os_name_is_an_error_and_another_host_a_warning(tmp_path: Path) -> None:
    doc = clean_doc()
    doc["operating_systems"] = doc["functions"]["@acme:mesh"][0]["operating_systems"] = ["Linux"]
    doc["scripts"][0]["operating_systems"] = ["Linux"]
    problems = lint(install(tmp_path, doc), REPORTED_AGENT_VERSION, HOST)
    assert fields(problems) == [
        ("operating_systems", "error"),
        ("functions.@acme:mesh.0.operating_systems", "error"),
        ("scripts.0.operating_systems", "error"),
        ("operating_systems", "warning"),
    ]
    assert "Ubuntu 22.04" in problems[0].fix
    assert lint(install(tmp_path, clean_doc()), REPORTED_AGENT_VERSION, None) == []


@pytest.mark.parametrize(
    ("content", "field"), [(None, "(file)"), ("{", "(file)"), ("[]", "(top level)")]
)
def test_an_unreadable_manifest_is_one_problem(
    tmp_path: Path, content: str | None, field: str
) -> None:
    if content is not None:
        (tmp_path / "module_manifest.json").write_text(content)
    (problem,) = lint(tmp_path, REPORTED_AGENT_VERSION, HOST)
    assert (problem.field, problem.severity) == (field, "error")
    assert problem.fix


def test_schema_files_are_inlined_and_their_problems_reported(tmp_path: Path) -> None:
    doc = clean_doc()
    doc["functions"]["@acme:mesh"][0]["function_schema"] = "schemas/mesh.json"
    d = install(tmp_path, doc)
    (problem,) = lint(d, REPORTED_AGENT_VERSION, HOST)  # said once, not again by the schema
    assert problem.field == "functions.@acme:mesh.0.function_schema"
    assert problem.problem.startswith("cannot load schemas/mesh.json")
    (d / "schemas").mkdir()
    (d / "schemas" / "mesh.json").write_text('{"inputs": {}}')
    assert lint(d, REPORTED_AGENT_VERSION, HOST) == []


def test_an_entrypoint_outside_the_module_is_one_problem(tmp_path: Path) -> None:
    doc = clean_doc()
    doc["functions"]["@acme:mesh"][0]["entrypoint"] = "../mesh.py"
    (problem,) = lint(install(tmp_path, doc), REPORTED_AGENT_VERSION, HOST)
    assert problem.field == "functions.@acme:mesh.0.entrypoint"
    assert "inside the module" in problem.problem
    assert problem.fix == "the executable's path relative to the module's root (no '..')"


def shipped_modules(tmp_path: Path) -> list[Path]:
    """Every module directory this repository ships or its tests install."""
    found = [p.parent for p in sorted(EXAMPLES.glob("*/module_manifest.json"))]
    found.append(module.install(tmp_path / "behaviours"))
    script = tmp_path / "receipt.sh"
    script.write_text("#!/bin/sh\n")
    found.append(ShellModule("receipt", script).install(tmp_path / "sh"))
    for name, doc, entry in (
        ("registry", registry.MANIFEST, "echo.py"),
        ("compat", compat.EXAMPLE_MANIFEST, "measure.py"),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / entry).write_text("#\n")
        (d / "module_manifest.json").write_text(json.dumps(doc))
        found.append(d)
    return found


def test_every_shipped_manifest_lints_without_errors(tmp_path: Path) -> None:
    modules = shipped_modules(tmp_path)
    assert len(modules) >= 6
    for d in modules:
        assert errors_only(lint(d, REPORTED_AGENT_VERSION, module.HOST_OS)) == [], d


def test_the_examples_have_no_warnings_either(tmp_path: Path) -> None:
    for manifest in sorted(EXAMPLES.glob("*/module_manifest.json")):
        copy = shutil.copytree(manifest.parent, tmp_path / manifest.parent.name)
        assert lint(copy, REPORTED_AGENT_VERSION, module.HOST_OS) == [], manifest
