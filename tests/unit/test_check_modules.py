"""`check`'s module lines: type, internal, authors, and each runtime dependency, checked as far
as is safe (PATH lookups, the catalog), a missing one a warning and never a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.check import Finding, module_findings
from agent.config import Settings


def install(root: Path, key: str, version: str, **extra: Any) -> None:
    d = root / key.split(":")[1]
    d.mkdir(parents=True)
    (d / "run.py").write_text("#\n")
    doc = {
        "module_key": key,
        "module_version": version,
        "functions": {
            f"{key}_fn": [
                {
                    "entrypoint": "run.py",
                    "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                    "function_schema": {"inputs": {}},
                }
            ]
        },
        **extra,
    }
    (d / "module_manifest.json").write_text(json.dumps(doc))


def findings(tmp_path: Path) -> list[Finding]:
    settings = Settings(
        registry_api_url="http://127.0.0.1:1", registry_api_token="t", modules_path=tmp_path
    )
    return module_findings(settings)


def dep(name: str, version: str, tool_type: str, **more: str) -> dict[str, str]:
    return {"name": name, "version": version, "tool_type": tool_type, **more}


def test_module_line_shows_type_internal_and_authors(tmp_path: Path) -> None:
    authors = [{"name": n, "email": f"{n}@x.org"} for n in ("ann", "bob", "cy")]
    install(tmp_path, "@t:auth", "1.0.0", module_type="authentication", internal=True,
            authors=authors)  # fmt: skip
    (line,) = findings(tmp_path)
    assert line == Finding(
        True, "module", "@t:auth 1.0.0 (authentication; internal; by ann, bob et al.): @t:auth_fn"
    )


def test_dependencies_are_checked_and_a_missing_one_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mytool").write_text("#!/bin/sh\n")
    (bin_dir / "mytool").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    modules = tmp_path / "modules"
    install(modules, "@t:base", "1.4.0")
    marker = tmp_path / "ran"
    install(modules, "@t:main", "1.0.0", dependencies=[
        dep("mytool", ">=2", "auxiliary_tool", command=f"touch {marker}"),
        dep("absent-tool", "1", "auxiliary_tool"),
        dep("@t:base", "^1.2.0", "istari_module"),
        dep("@t:base", ">=2.0.0", "istari_module"),
        dep("@t:gone", "*", "istari_module"),
        dep("service", "1", "auth"),
    ], dev_dependencies=[dep("pytest", "8", "auxiliary_tool")])  # fmt: skip

    found = [f for f in findings(modules) if f.topic == "dependency"]

    assert all(f.ok for f in found)  # never a failure
    details = [(f.warning, f.detail) for f in found]
    assert details == [
        (False, f"@t:main needs mytool >=2 (auxiliary_tool): {bin_dir / 'mytool'} "
                "(its version is not checked)"),
        (True, "@t:main needs absent-tool 1 (auxiliary_tool): not found on PATH; install it "
               "for the agent's user"),
        (False, "@t:main needs @t:base ^1.2.0 (istari_module): 1.4.0 is installed"),
        (True, "@t:main needs @t:base >=2.0.0 (istari_module): 1.4.0 is installed; install a "
               "version in range"),
        (True, "@t:main needs @t:gone * (istari_module): not installed here; install it under "
               "modules_path"),
        (False, "@t:main needs service 1 (auth): reported (credentials come with each job)"),
        (False, "@t:main: build-time, not checked: pytest 8"),
    ]  # fmt: skip
    assert not marker.exists()  # a dependency's command is never run
