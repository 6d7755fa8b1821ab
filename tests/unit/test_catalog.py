"""The catalog: scanning module directories, and resolving a job's function to one variant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.modules.catalog import (
    MANIFEST_FILE,
    Catalog,
    FunctionVariantHint,
    NotInstalled,
    scan,
)
from agent.protocol.push import Offer

SCHEMA: dict[str, Any] = {
    "inputs": {"size": {"type": "parameter", "validation_types": ["@number"]}},
    "outputs": [{"name": "result", "type": "file", "required": True}],
}
NO_HINT = FunctionVariantHint()


def variant(
    entrypoint: str = "run.py",
    run_command: str = "python3 {entrypoint} {input_file} {output_file}",
    oses: list[str] | None = None,
    schema: object = SCHEMA,
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "entrypoint": entrypoint,
        "run_command": run_command,
        "function_schema": schema,
    }
    if oses is not None:
        v["operating_systems"] = oses
    return v


def manifest(key: str, functions: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"module_key": key, "module_version": "1.0.0", "functions": functions}


def install(root: Path, name: str, doc: object, files: tuple[str, ...] = ("run.py",)) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (directory / MANIFEST_FILE).write_text(text)
    for f in files:
        (directory / f).parent.mkdir(parents=True, exist_ok=True)
        (directory / f).write_text("#!/bin/sh\n")
    return directory


# scan


def test_a_good_module_is_loaded(tmp_path: Path) -> None:
    directory = install(tmp_path, "cad", manifest("@acme:cad", {"@acme:mesh": [variant()]}))
    catalog = scan(tmp_path)
    assert catalog.errors == ()
    (module,) = catalog.modules
    assert module.key == "@acme:cad"
    assert module.version == "1.0.0"
    assert module.directory == directory.resolve()
    assert module.raw["functions"]["@acme:mesh"][0]["function_schema"] == SCHEMA
    assert catalog.functions() == ["@acme:mesh"]


def test_directories_without_a_manifest_and_plain_files_are_ignored(tmp_path: Path) -> None:
    install(tmp_path, "cad", manifest("@acme:cad", {"@acme:mesh": [variant()]}))
    (tmp_path / "scratch").mkdir()
    (tmp_path / "README.txt").write_text("not a module")
    catalog = scan(tmp_path)
    assert [m.key for m in catalog.modules] == ["@acme:cad"]
    assert catalog.errors == ()


def test_a_missing_modules_path_is_one_error(tmp_path: Path) -> None:
    catalog = scan(tmp_path / "nowhere")
    assert catalog.modules == ()
    (error,) = catalog.errors
    assert (error.field, error.problem) == ("modules_path", "not a directory")


def test_broken_json_is_reported_and_skipped(tmp_path: Path) -> None:
    install(tmp_path, "a_broken", '{"module_key": "@acme:broken", ')
    install(tmp_path, "b_good", manifest("@acme:good", {"@acme:f": [variant()]}))
    catalog = scan(tmp_path)
    assert [m.key for m in catalog.modules] == ["@acme:good"]
    (error,) = catalog.errors
    assert error.path == str(tmp_path / "a_broken" / MANIFEST_FILE)
    assert error.field == "(file)"
    assert error.problem.startswith("not valid JSON")


def test_a_manifest_that_is_not_an_object_is_reported(tmp_path: Path) -> None:
    install(tmp_path, "m", "[1, 2, 3]")
    (error,) = scan(tmp_path).errors
    assert (error.field, error.problem) == ("(top level)", "must be a JSON object")


def test_an_invalid_manifest_is_reported_with_its_field(tmp_path: Path) -> None:
    doc = manifest("@acme:cad", {"@acme:mesh": [variant()]})
    del doc["module_version"]
    install(tmp_path, "cad", doc)
    catalog = scan(tmp_path)
    assert catalog.modules == ()
    (error,) = catalog.errors
    assert (error.field, error.problem) == ("module_version", "required")


def test_missing_entrypoint_file_is_reported_and_skipped(tmp_path: Path) -> None:
    doc = manifest("@acme:cad", {"@acme:mesh": [variant(), variant(entrypoint="bin/mesh")]})
    install(tmp_path, "cad", doc, files=("run.py",))
    catalog = scan(tmp_path)
    assert catalog.modules == ()
    (error,) = catalog.errors
    assert error.field == "functions.@acme:mesh.1.entrypoint"
    assert error.problem == f"file not found: {tmp_path / 'cad' / 'bin' / 'mesh'}"


def test_a_duplicate_module_key_is_reported_and_the_second_skipped(tmp_path: Path) -> None:
    first = install(tmp_path, "a", manifest("@acme:cad", {"@acme:mesh": [variant()]}))
    install(tmp_path, "b", manifest("@acme:cad", {"@acme:other": [variant()]}))
    catalog = scan(tmp_path)
    (module,) = catalog.modules
    assert module.directory == first.resolve()
    (error,) = catalog.errors
    assert error.path == str(tmp_path / "b" / MANIFEST_FILE)
    assert error.field == "module_key"
    assert error.problem == f"@acme:cad is already installed from {first}; skipped"
    assert catalog.functions() == ["@acme:mesh"]


def test_function_schema_file_inside_the_module_is_inlined(tmp_path: Path) -> None:
    doc = manifest("@acme:cad", {"@acme:mesh": [variant(schema="schemas/mesh.json")]})
    directory = install(tmp_path, "cad", doc)
    (directory / "schemas").mkdir()
    (directory / "schemas" / "mesh.json").write_text(json.dumps(SCHEMA))
    catalog = scan(tmp_path)
    assert catalog.errors == ()
    (module,) = catalog.modules
    assert module.raw["functions"]["@acme:mesh"][0]["function_schema"] == SCHEMA
    schema = module.manifest.functions["@acme:mesh"][0].function_schema
    assert list(schema.inputs) == ["size"]


@pytest.mark.parametrize("ref", ["../outside.json", "/ABSOLUTE/outside.json", "link.json"])
def test_function_schema_file_outside_the_module_is_refused(tmp_path: Path, ref: str) -> None:
    modules = tmp_path / "modules"
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(SCHEMA))
    ref = ref.replace("/ABSOLUTE", str(tmp_path))
    directory = install(modules, "cad", manifest("@acme:cad", {"@acme:f": [variant(schema=ref)]}))
    (directory / "link.json").symlink_to(outside)
    catalog = scan(modules)
    assert catalog.modules == ()
    (error,) = catalog.errors
    assert error.field == "functions.@acme:f.0.function_schema"
    assert error.problem == "schema file must be inside the module"


def test_function_schema_file_that_is_missing_or_broken_is_reported(tmp_path: Path) -> None:
    doc = manifest("@acme:cad", {"@acme:f": [variant(schema="gone.json")]})
    install(tmp_path, "a", doc)
    doc = manifest("@acme:cam", {"@acme:g": [variant(schema="bad.json")]})
    (install(tmp_path, "b", doc) / "bad.json").write_text("{nope")
    errors = scan(tmp_path).errors
    assert [e.problem.split(":")[0] for e in errors] == [
        "cannot load gone.json",
        "cannot load bad.json",
    ]


# resolve


def catalog_of(tmp_path: Path, *docs: dict[str, Any]) -> Catalog:
    for i, doc in enumerate(docs):
        files = {v["entrypoint"] for vs in doc["functions"].values() for v in vs}
        install(tmp_path, f"m{i}", doc, files=tuple(files))
    catalog = scan(tmp_path)
    assert catalog.errors == ()
    return catalog


def test_resolve_picks_the_variant_for_the_host_os(tmp_path: Path) -> None:
    doc = manifest(
        "@acme:cad",
        {
            "@acme:mesh": [
                variant(entrypoint="win.py", oses=["Windows 11"]),
                variant(entrypoint="linux.py", oses=["Ubuntu 22.04", "RHEL 9"]),
            ]
        },
    )
    catalog = catalog_of(tmp_path, doc)
    resolved = catalog.resolve("@acme:mesh", None, "RHEL 9", NO_HINT)
    assert resolved.variant.entrypoint == "linux.py"
    assert resolved.function == "@acme:mesh"
    assert resolved.module.key == "@acme:cad"
    assert resolved.entrypoint == (tmp_path / "m0" / "linux.py").resolve()
    assert catalog.resolve("@acme:mesh", "@acme:cad", "Windows 11", NO_HINT).variant.entrypoint == (
        "win.py"
    )


def test_a_variant_without_os_list_uses_the_modules_list(tmp_path: Path) -> None:
    doc = manifest("@acme:cad", {"@acme:mesh": [variant()]})
    doc["operating_systems"] = ["Ubuntu 24.04"]
    catalog = catalog_of(tmp_path, doc)
    assert catalog.resolve("@acme:mesh", None, "Ubuntu 24.04", NO_HINT).variant.entrypoint == (
        "run.py"
    )
    with pytest.raises(NotInstalled):
        catalog.resolve("@acme:mesh", None, "RHEL 9", NO_HINT)


def test_the_hint_chooses_between_variants_that_fit(tmp_path: Path) -> None:
    oses = ["Ubuntu 22.04"]
    doc = manifest(
        "@acme:cad",
        {
            "@acme:mesh": [
                variant(entrypoint="a.py", run_command="python3 {entrypoint}", oses=oses),
                variant(entrypoint="b.py", run_command="python3 {entrypoint} -v", oses=oses),
            ]
        },
    )
    catalog = catalog_of(tmp_path, doc)
    b = FunctionVariantHint(entrypoint="b.py", run_command="python3 {entrypoint} -v")
    assert catalog.resolve("@acme:mesh", None, "Ubuntu 22.04", b).variant.entrypoint == "b.py"
    # A hint that matches nothing (or only half) falls back to the first variant that fits.
    half = FunctionVariantHint(entrypoint="b.py", run_command="python3 {entrypoint}")
    assert catalog.resolve("@acme:mesh", None, "Ubuntu 22.04", half).variant.entrypoint == "a.py"
    assert catalog.resolve("@acme:mesh", None, "Ubuntu 22.04", NO_HINT).variant.entrypoint == (
        "a.py"
    )


def test_the_hint_never_picks_a_variant_for_another_os(tmp_path: Path) -> None:
    doc = manifest(
        "@acme:cad",
        {
            "@acme:mesh": [
                variant(entrypoint="win.py", run_command="{entrypoint}", oses=["Windows 11"]),
                variant(entrypoint="lin.py", run_command="{entrypoint}", oses=["RHEL 9"]),
            ]
        },
    )
    catalog = catalog_of(tmp_path, doc)
    hint = FunctionVariantHint(entrypoint="win.py", run_command="{entrypoint}")
    assert catalog.resolve("@acme:mesh", None, "RHEL 9", hint).variant.entrypoint == "lin.py"


def test_no_such_function_lists_what_is_served(tmp_path: Path) -> None:
    catalog = catalog_of(
        tmp_path,
        manifest("@acme:cad", {"@acme:mesh": [variant()], "@acme:area": [variant()]}),
    )
    with pytest.raises(NotInstalled) as info:
        catalog.resolve("@acme:volume", None, "RHEL 9", NO_HINT)
    assert str(info.value) == (
        "no installed module provides @acme:volume; this agent serves: @acme:area, @acme:mesh"
    )


def test_a_function_from_another_module_than_the_job_names_is_not_installed(
    tmp_path: Path,
) -> None:
    catalog = catalog_of(tmp_path, manifest("@acme:cad", {"@acme:mesh": [variant()]}))
    with pytest.raises(NotInstalled) as info:
        catalog.resolve("@acme:mesh", "@other:cad", "RHEL 9", NO_HINT)
    assert "(job names module @other:cad)" in str(info.value)
    assert "this agent serves: @acme:mesh" in str(info.value)


def test_an_empty_catalog_serves_nothing() -> None:
    with pytest.raises(NotInstalled, match=r"this agent serves: nothing$"):
        Catalog().resolve("@acme:mesh", None, "RHEL 9", NO_HINT)


def test_no_variant_for_the_os_lists_the_supported_ones(tmp_path: Path) -> None:
    doc = manifest(
        "@acme:cad",
        {
            "@acme:mesh": [
                variant(entrypoint="a.py", oses=["Windows 11", "Ubuntu 22.04"]),
                variant(entrypoint="b.py", oses=["RHEL 8"]),
            ]
        },
    )
    catalog = catalog_of(tmp_path, doc)
    with pytest.raises(NotInstalled) as info:
        catalog.resolve("@acme:mesh", None, "RHEL 9", NO_HINT)
    assert str(info.value) == (
        "@acme:mesh has no variant for RHEL 9 (variants support: RHEL 8, Ubuntu 22.04, Windows 11)"
    )


def test_an_offer_is_served_only_for_an_installed_function_os_and_tool_version(
    tmp_path: Path,
) -> None:
    doc = manifest("@acme:cad", {"@acme:mesh": [variant(oses=["Ubuntu 24.04"])]})
    doc["tool_versions"] = ["2.1"]
    catalog = catalog_of(tmp_path, doc)

    def serves(host_os: str = "Ubuntu 24.04", **fields: str) -> bool:
        offer = Offer("job-1", **{"module": "@acme:cad", "function": "@acme:mesh", **fields})
        return catalog.serves(offer, host_os)

    assert serves()
    assert serves(tool_version="2.1", operating_system="Ubuntu 24.04")
    assert not serves(tool_version="3.0")  # a tool version the module does not list
    assert not serves(operating_system="RHEL 9")  # the job asks for another OS
    assert not serves(host_os="RHEL 9")  # no variant for this host
    assert not serves(module="@other:cad")
    assert not serves(function="@acme:solve")
    assert not Catalog().serves(Offer("job-1", "@acme:cad", "@acme:mesh"), "Ubuntu 24.04")


# agent_version


def test_a_module_whose_range_leaves_out_our_agent_version_is_refused(tmp_path: Path) -> None:
    newer = {**manifest("@acme:new", {"@acme:a": [variant()]}), "agent_version": ">=12.0.0"}
    fits = {**manifest("@acme:fits", {"@acme:b": [variant()]}), "agent_version": ">=11.0.0"}
    install(tmp_path, "new", newer)
    install(tmp_path, "fits", fits)
    catalog = scan(tmp_path, agent_version="11.10.3")
    assert [m.key for m in catalog.modules] == ["@acme:fits"]
    (error,) = catalog.errors
    assert error.path == str((tmp_path / "new" / MANIFEST_FILE).resolve())
    assert error.field == "agent_version"
    assert "requires an agent '>=12.0.0'" in error.problem
    assert "reports 11.10.3 (setting agent_version)" in error.problem
    assert [m.key for m in scan(tmp_path, agent_version="12.0.0").modules] == [
        "@acme:fits",
        "@acme:new",
    ]


def test_a_module_with_a_range_that_does_not_parse_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    doc = {**manifest("@acme:cad", {"@acme:mesh": [variant()]}), "agent_version": "latest"}
    install(tmp_path, "cad", doc)
    catalog = scan(tmp_path)
    assert catalog.modules == ()
    (error,) = catalog.errors
    assert error.path.endswith(f"cad/{MANIFEST_FILE}")
    assert error.field == "agent_version"
    assert "'latest' is not a version" in error.problem


def test_a_module_without_a_range_is_served(tmp_path: Path) -> None:
    install(tmp_path, "cad", manifest("@acme:cad", {"@acme:mesh": [variant()]}))
    assert [m.key for m in scan(tmp_path, agent_version="0.0.1").modules] == ["@acme:cad"]
