"""module_checksum: one digest of the module's files; a module whose files changed is refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from agent.modules.catalog import MANIFEST_FILE, load_module, scan
from agent.modules.checksum import module_checksum
from agent.protocol.manifest import ManifestError


def make_module(root: Path, checksum: str = "") -> Path:
    d = root / "mod"
    (d / "bin").mkdir(parents=True)
    (d / "run.py").write_text("print('hi')\n")
    (d / "bin" / "data.txt").write_bytes(b"\x00\x01data")
    write_manifest(d, checksum)
    return d


def write_manifest(d: Path, checksum: str) -> None:
    doc = {
        "module_key": "@t:mod",
        "module_version": "1.0.0",
        "module_checksum": checksum,
        "functions": {
            "@t:run": [
                {
                    "entrypoint": "run.py",
                    "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                    "function_schema": {"inputs": {}},
                }
            ]
        },
    }
    (d / MANIFEST_FILE).write_text(json.dumps(doc))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_algorithm_is_the_documented_one(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    lines = [
        b"bin/data.txt\0" + sha(b"\x00\x01data").encode() + b"\n",
        b"run.py\0" + sha(b"print('hi')\n").encode() + b"\n",
    ]
    assert module_checksum(d) == sha(b"".join(lines))


def test_it_is_stable_and_ignores_the_manifest(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    first = module_checksum(d)
    write_manifest(d, "f" * 64)
    assert module_checksum(d) == first


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "run.py").write_text("print('changed')\n"),
        lambda d: (d / "bin" / "new.txt").write_text("new"),
        lambda d: (d / "bin" / "data.txt").unlink(),
        lambda d: (d / "run.py").rename(d / "bin" / "run.py"),
        lambda d: (
            (d / "sub" / MANIFEST_FILE).parent.mkdir()
            or (d / "sub" / MANIFEST_FILE).write_text("{}")
        ),
    ],
)
def test_it_changes_when_a_file_changes_is_added_moved_or_removed(
    tmp_path: Path, change: object
) -> None:
    d = make_module(tmp_path)
    before = module_checksum(d)
    change(d)  # type: ignore[operator]
    assert module_checksum(d) != before


def test_dot_entries_and_pycache_are_not_counted(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    before = module_checksum(d)
    (d / ".git").mkdir()
    (d / ".git" / "HEAD").write_text("ref")
    (d / ".DS_Store").write_text("x")
    (d / "bin" / "__pycache__").mkdir()
    (d / "bin" / "__pycache__" / "x.pyc").write_bytes(b"pyc")
    os.mkfifo(d / "bin" / "fifo")  # neither a file nor a link: not counted
    assert module_checksum(d) == before


def test_a_symlink_counts_as_its_target_text_and_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("one")
    d = make_module(tmp_path)
    (d / "link").symlink_to(outside)
    (d / "dirlink").symlink_to(tmp_path)  # a link to a directory is not walked
    with_links = module_checksum(d)
    outside.write_text("two: the target's content is not in the digest")
    assert module_checksum(d) == with_links
    (d / "link").unlink()
    (d / "link").symlink_to(tmp_path / "elsewhere")
    assert module_checksum(d) != with_links


def test_a_matching_checksum_loads(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    write_manifest(d, module_checksum(d).upper())  # hex in either case
    assert load_module(d).manifest.module_checksum


def test_an_empty_checksum_is_not_checked(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    (d / "run.py").write_text("changed")
    assert load_module(d).manifest.module_checksum == ""


def test_a_module_whose_files_changed_is_refused(tmp_path: Path) -> None:
    d = make_module(tmp_path)
    write_manifest(d, module_checksum(d))
    (d / "run.py").write_text("print('tampered')\n")
    with pytest.raises(ManifestError) as info:
        load_module(d)
    assert info.value.field == "module_checksum"
    assert "files changed since the checksum was computed" in info.value.problem
    assert f"istari-agent modules checksum {d}" in info.value.problem
    catalog = scan(tmp_path)
    assert catalog.modules == ()
    assert [e.field for e in catalog.errors] == ["module_checksum"]
