"""The live catalog and the pinned copies (agent/modules/live.py, snapshot.py), on real files:
what each change of a module directory does to what is served, and what a job holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.modules.catalog import FunctionVariantHint
from agent.modules.live import Kind, LiveCatalog
from agent.modules.snapshot import PINNED_MARK, fingerprint, pin
from tests.tools import pinned

HINT = FunctionVariantHint()


@pytest.fixture
def live(tmp_path: Path) -> LiveCatalog:
    (tmp_path / "modules").mkdir()
    return LiveCatalog(tmp_path / "modules", tmp_path / "state" / "modules")


def refresh(live: LiveCatalog, *names: str) -> list[Kind]:
    return [c.kind for c in live.commit(live.prepare(names))]


def served(live: LiveCatalog) -> list[str]:
    return [f"{m.key}@{m.version}" for m in live.modules]


def test_added_updated_removed_and_unchanged(live: LiveCatalog) -> None:
    source = pinned.build(live.modules_path / "pinned", "1.0.0", "v1")
    assert refresh(live, "pinned") == [Kind.ADDED]
    assert served(live) == ["@test:pinned@1.0.0"]
    assert refresh(live, "pinned") == [Kind.UNCHANGED]
    pinned.build(source, "1.0.1", "v2")
    assert refresh(live, "pinned") == [Kind.UPDATED]
    assert served(live) == ["@test:pinned@1.0.1"]
    (source / "module_manifest.json").unlink()
    assert refresh(live, "pinned") == [Kind.REMOVED]
    assert served(live) == []


def test_a_job_keeps_the_files_it_was_validated_with(live: LiveCatalog) -> None:
    source = pinned.build(live.modules_path / "pinned", "1.0.0", "v1")
    live.load()
    resolved = live.resolve(pinned.FUNCTION, None, pinned.HOST_OS, HINT)
    assert not resolved.entrypoint.is_relative_to(live.modules_path)  # runs from the copy
    pinned.build(source, "1.0.1", "v2")  # the files change under the running job
    refresh(live, "pinned")
    assert (resolved.module.directory / "data.txt").read_text() == "v1"
    newer = live.resolve(pinned.FUNCTION, None, pinned.HOST_OS, HINT)
    assert (newer.module.directory / "data.txt").read_text() == "v2"
    live.prune()  # (no job runs in this test) the old copy goes, the served one stays
    assert not resolved.module.directory.exists()
    assert newer.module.directory.exists()


def test_a_broken_update_keeps_the_version_before_it_serving(live: LiveCatalog) -> None:
    source = pinned.build(live.modules_path / "pinned", "1.0.0", "v1")
    live.load()
    (source / "tool.py").unlink()  # the entrypoint is gone
    (changed,) = live.commit(live.prepare(["pinned"]))
    assert changed.kind is Kind.FAILED
    assert changed.kept is not None and changed.kept.version == "1.0.0"
    assert changed.error is not None and changed.error.field.endswith("entrypoint")
    assert str(source) in changed.error.problem  # the module's own path, not the pinned copy
    assert served(live) == ["@test:pinned@1.0.0"]
    assert [e.field for e in live.errors] == [changed.error.field]


def test_a_second_directory_with_the_same_key_is_refused_and_the_first_serves(
    live: LiveCatalog,
) -> None:
    pinned.build(live.modules_path / "a", "1.0.0", "a")
    live.load()
    pinned.build(live.modules_path / "b", "2.0.0", "b")
    (changed,) = live.commit(live.prepare(["b"]))
    assert changed.kind is Kind.FAILED
    assert changed.error is not None and "already installed from" in changed.error.problem
    assert served(live) == ["@test:pinned@1.0.0"]


def test_hidden_directories_are_not_modules(live: LiveCatalog) -> None:
    pinned.build(live.modules_path / ".installing-x", "1.0.0", "v1")
    assert live.names() == []
    assert live.prepare([".installing-x"]) == []


def test_fingerprint_follows_no_link_and_sees_every_change(tmp_path: Path) -> None:
    module = pinned.build(tmp_path / "m", "1.0.0", "v1")
    (module / "loop").symlink_to(module)  # a loop: never followed
    (module / "out").symlink_to("/")  # a link to a large tree: costs nothing
    first = fingerprint(module)
    assert fingerprint(module) == first
    (module / "data.txt").write_text("v1 and more")
    assert fingerprint(module) != first
    copy = pin(module, tmp_path / "store")
    assert (copy / "loop").is_symlink() and (copy / "loop").readlink() == module
    assert (copy / PINNED_MARK).is_file()
    assert pin(module, tmp_path / "store") == copy  # found again, not copied again


def test_an_invalid_manifest_is_one_clear_error(live: LiveCatalog) -> None:
    directory = pinned.build(live.modules_path / "pinned", "1.0.0", "v1")
    (directory / "module_manifest.json").write_text(json.dumps({"module_key": "nope"}))
    assert refresh(live, "pinned") == [Kind.FAILED]
    (error,) = live.errors
    assert error.path == str(directory / "module_manifest.json")


def test_a_link_loop_in_the_modules_path_is_one_clear_error(live: LiveCatalog) -> None:
    (live.modules_path / "loop").symlink_to(live.modules_path / "loop")
    assert live.names() == ["loop"]
    assert refresh(live, "loop") == [Kind.FAILED]
    (error,) = live.errors
    assert "loop" in error.problem


def test_a_function_key_in_two_modules_is_named_and_both_serve(live: LiveCatalog) -> None:
    pinned.build(live.modules_path / "a", "1.0.0", "a")
    other = pinned.build(live.modules_path / "b", "1.0.0", "b")
    manifest = json.loads((other / "module_manifest.json").read_text())
    (other / "module_manifest.json").write_text(json.dumps({**manifest, "module_key": "@test:b"}))
    live.load()
    assert live.shared_functions() == {pinned.FUNCTION: ["@test:pinned", "@test:b"]}
    picked = live.resolve(pinned.FUNCTION, "@test:b", pinned.HOST_OS, HINT)
    assert (picked.module.directory / "data.txt").read_text() == "b"
