"""`istari-agent modules publish PATH` (the stand-in for the platform's `stari client publish`),
and `modules install|list|remove`."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from tests.support.agentcli import agent
from tests.support.registry import RegistryProcess
from tests.tools import module, pinned


def _env(reg: RegistryProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    return {**env, "ISTARI_REGISTRY_URL": reg.url, "ISTARI_REGISTRY_AUTH_TOKEN": reg.token}


def test_publish_makes_the_functions_submittable(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    env = _env(registry_process)
    model = tmp_path / "part.txt"
    model.write_text("model")
    before = agent(env, "submit", str(model), "--function", module.fn("echo"))
    assert before.returncode == 1, before.stderr  # nobody published it yet
    directory = module.install(tmp_path / "modules")

    done = agent(env, "modules", "publish", str(directory / "module_manifest.json"))

    assert done.returncode == 0, done.stderr
    key = module.manifest()["module_key"]
    assert f"published {key} {module.manifest()['module_version']}" in done.stdout
    after = agent(env, "submit", str(model), "--function", module.fn("echo"))
    assert after.returncode == 0, after.stderr
    again = agent(env, "modules", "publish", str(directory))  # the same version: a no-op
    assert again.returncode == 0, again.stderr


def test_a_broken_manifest_is_named_and_nothing_is_sent(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    directory = module.install(tmp_path / "modules")
    manifest = json.loads((directory / "module_manifest.json").read_text())
    manifest["module_version"] = "soon"
    (directory / "module_manifest.json").write_text(json.dumps(manifest))

    done = agent(_env(registry_process), "modules", "publish", str(directory))

    assert done.returncode == 2
    assert "module_version" in done.stderr
    other = agent(_env(registry_process), "modules", "publish", str(directory / "behave.py"))
    assert other.returncode == 2
    assert "module_manifest.json" in other.stderr


def test_install_list_and_remove_from_an_archive(tmp_path: Path) -> None:
    """`modules install` of a tar.gz, `list` naming it (and a broken neighbour), `remove`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    env["HOME"] = str(tmp_path / "home")  # no config file of the machine's is read
    modules = tmp_path / "modules"
    modules.mkdir()
    archive = tmp_path / "pinned-1.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(pinned.build(tmp_path / "src", "1.0.0", "v1"), arcname="pinned")
    where = ["--modules-path", str(modules)]

    done = agent(env, "modules", "install", str(archive), *where)
    assert done.returncode == 0, done.stderr
    assert f"installed {pinned.MODULE} 1.0.0 in {modules / 'pinned'}" in done.stdout
    (modules / "broken").mkdir()
    (modules / "broken" / "module_manifest.json").write_text("{")
    listed = agent(env, "modules", "list", *where)
    assert listed.returncode == 1  # something would be refused
    assert f"{pinned.MODULE} 1.0.0  pinned/  {pinned.FUNCTION}" in listed.stdout
    assert "refused:" in listed.stderr and "broken" in listed.stderr
    removed = agent(env, "modules", "remove", pinned.MODULE, *where)
    assert removed.returncode == 0, removed.stderr
    assert not (modules / "pinned").exists()
    again = agent(env, "modules", "remove", pinned.MODULE, *where)
    assert again.returncode == 2 and "is not installed" in again.stderr


def test_lint_gives_every_problem_with_its_fix_and_checksum_pins_the_files(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    env["HOME"] = str(tmp_path / "home")
    source = pinned.build(tmp_path / "pinned", "1.0.0", "v1")
    manifest = json.loads((source / "module_manifest.json").read_text())
    broken = {**manifest, "module_version": "one", "tool_key": "Bad Key"}
    (source / "module_manifest.json").write_text(json.dumps(broken))
    (source / "tool.py").unlink()

    linted = agent(env, "modules", "lint", str(source))
    assert linted.returncode == 1
    for field in ("module_version", "tool_key", "entrypoint"):
        assert f": {field}" in linted.stdout or f".{field}:" in linted.stdout, linted.stdout
    assert linted.stdout.count("fix: ") == linted.stdout.count("error: ") >= 3

    pinned.build(source, "1.0.0", "v1")  # repaired, then pinned by its checksum
    digest = agent(env, "modules", "checksum", str(source)).stdout.strip()
    manifest["module_checksum"] = digest
    (source / "module_manifest.json").write_text(json.dumps(manifest))
    assert agent(env, "modules", "lint", str(source)).returncode == 0
    where = ["--modules-path", str(tmp_path / "modules")]
    (tmp_path / "modules").mkdir()
    assert agent(env, "modules", "install", str(source), *where).returncode == 0
    (tmp_path / "modules" / "pinned" / "data.txt").write_text("changed after the checksum")
    listed = agent(env, "modules", "list", *where)
    assert listed.returncode == 1 and "module_checksum" in listed.stderr, listed.stderr
