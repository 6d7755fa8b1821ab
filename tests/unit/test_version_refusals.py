"""The Validating version rules, pure: another module version, a tool version not installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.validate import module_version_refusal, tool_version_refusal
from agent.modules.catalog import FunctionVariantHint, Resolved, scan
from agent.registry.models import Job

HOST = "Ubuntu 22.04"


def resolved(tmp_path: Path, version: str = "1.0.0", **levels: Any) -> Resolved:
    d = tmp_path / "mod"
    d.mkdir()
    (d / "run.py").write_text("#\n")
    variant = {
        "entrypoint": "run.py",
        "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
        "function_schema": {"inputs": {}},
        **levels.get("variant", {}),
    }
    doc = {"module_key": "@t:mod", "module_version": version,
           "functions": {"@t:fn": [variant]}, **levels.get("module", {})}  # fmt: skip
    (d / "module_manifest.json").write_text(json.dumps(doc))
    catalog = scan(tmp_path)
    assert catalog.errors == ()
    return catalog.resolve("@t:fn", None, HOST, FunctionVariantHint())


def job(
    module_version: str = "1.0.0", tool_version: str | None = None, published: Any = None
) -> Job:
    function = {
        "id": "f", "name": "@t:fn", "version": module_version, "module_name": "@t:mod",
        "module_version": module_version, "entrypoint": "run.py", "run_command": "x",
        "tool_versions": published and [{"tool_version": t} for t in published],
    }  # fmt: skip
    return Job.model_validate(
        {
            "id": "j",
            "created": "now",
            "file": {"id": "f", "revisions": []},
            "function": function,
            "tool_version": tool_version,
        }
    )


@pytest.mark.parametrize(("published", "installed"), [("1.0.0", "1.0.0"), ("v1.0.0", "1.0.0")])
def test_the_same_module_version_runs(tmp_path: Path, published: str, installed: str) -> None:
    assert module_version_refusal(job(published), resolved(tmp_path, installed)) is None


def test_another_module_version_is_refused_naming_both(tmp_path: Path) -> None:
    refusal = module_version_refusal(job("1.0.0"), resolved(tmp_path, "1.1.0"))
    assert refusal == (
        "the job runs @t:fn of @t:mod 1.0.0, but this agent has @t:mod 1.1.0 installed: install "
        "1.0.0, or set allow_module_version_mismatch = true to run it with the installed version"
    )


@pytest.mark.parametrize(
    ("levels", "the_job", "refused"),
    [
        ({}, job(tool_version="9"), None),  # the module lists no tool versions: not checked
        ({"module": {"tool_versions": ["1", "2"]}}, job(tool_version="2"), None),
        ({"module": {"tool_versions": ["1", "2"]}}, job(tool_version="3"),
         "the job asks for tool version 3 of @t:fn; the installed @t:mod 1.0.0 has 1, 2"),
        ({"module": {"tool_versions": ["1", "2"]}, "variant": {"tool_versions": ["2"]}},
         job(tool_version="1"),
         "the job asks for tool version 1 of @t:fn; the installed @t:mod 1.0.0 has 2"),
        ({"module": {"tool_versions": ["1"]}}, job(), None),  # nothing asked, none published
        ({"module": {"tool_versions": ["1"]}}, job(published=["1", "2"]), None),
        ({"module": {"tool_versions": ["1"]}}, job(published=["2", "3"]),
         "the job asks for tool versions 2, 3 of @t:fn; the installed @t:mod 1.0.0 has 1"),
    ],
)  # fmt: skip
def test_tool_versions(
    tmp_path: Path, levels: dict[str, Any], the_job: Job, refused: str | None
) -> None:
    assert tool_version_refusal(the_job, resolved(tmp_path, **levels)) == refused
