"""A job's work directory: a safe name, private modes, and containment through symlinks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.jobs.workdir import WorkDir, safe_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("job-123_a.b", "job-123_a.b"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/model.stl", "model.stl"),
        ("C:\\Users\\me\\model.STEP", "model.STEP"),
        ("..\\..\\evil.exe", "evil.exe"),
        (".hidden", "hidden"),
        ("...dots", "dots"),
        ("my model (v2).stl", "my_model_v2_.stl"),
        ("rés umé.txt", "r_s_um_.txt"),
        ("job:1;rm -rf", "job_1_rm_-rf"),
    ],
)
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


@pytest.mark.parametrize("name", ["", ".", "..", "/", "...", "dir/.."])
def test_names_with_nothing_left_use_the_fallback(name: str) -> None:
    assert safe_name(name) == "file"
    assert safe_name(name, fallback="model") == "model"


def test_safe_names_are_bounded() -> None:
    assert safe_name("x" * 1000) == "x" * 200


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_makes_the_layout_private(tmp_path: Path) -> None:
    output = tmp_path / "output"
    wd = WorkDir.create(output, "job/../42")
    assert wd.root == (output / "42").resolve()
    for d in (wd.root, wd.inputs, wd.temp_dir, wd.uploads):
        assert d.is_dir()
        assert mode(d) == 0o700, d
    assert [p.name for p in (wd.input_file, wd.output_file, wd.log_file, wd.module_config)] == [
        "input.json", "output.json", "job.log", "module_config.json",
    ]  # fmt: skip
    assert all(p.parent == wd.root for p in (wd.input_file, wd.log_file))


def test_create_replaces_an_old_directory_of_the_same_job(tmp_path: Path) -> None:
    old = WorkDir.create(tmp_path, "job-1")
    (old.temp_dir / "stale.txt").write_text("from last time")
    new = WorkDir.create(tmp_path, "job-1")
    assert new.root == old.root
    assert list(new.temp_dir.iterdir()) == []


def test_remove_deletes_everything_and_tolerates_a_second_call(tmp_path: Path) -> None:
    wd = WorkDir.create(tmp_path, "job-1")
    (wd.temp_dir / "out.bin").write_bytes(b"x")
    wd.remove()
    assert not wd.root.exists()
    wd.remove()


def test_contains_paths_inside_even_ones_not_yet_written(tmp_path: Path) -> None:
    wd = WorkDir.create(tmp_path, "job-1")
    assert wd.contains(wd.temp_dir / "result.json")
    assert wd.contains(wd.temp_dir / "sub" / ".." / "result.json")
    assert wd.contains(wd.root)


def test_contains_refuses_paths_that_leave_the_directory(tmp_path: Path) -> None:
    wd = WorkDir.create(tmp_path / "out", "job-1")
    assert not wd.contains(wd.temp_dir / ".." / ".." / "other")
    assert not wd.contains(tmp_path / "out" / "job-10")  # a sibling that shares the prefix
    assert not wd.contains(Path("/etc/passwd"))


def test_contains_follows_symlinks(tmp_path: Path) -> None:
    wd = WorkDir.create(tmp_path / "out", "job-1")
    secret = tmp_path / "secret.txt"
    secret.write_text("not the tool's")
    (wd.temp_dir / "result.txt").symlink_to(secret)
    (wd.temp_dir / "escape").symlink_to(tmp_path, target_is_directory=True)
    (wd.temp_dir / "inner").symlink_to(wd.inputs, target_is_directory=True)
    assert not wd.contains(wd.temp_dir / "result.txt")
    assert not wd.contains(wd.temp_dir / "escape" / "secret.txt")
    assert wd.contains(wd.temp_dir / "inner")
