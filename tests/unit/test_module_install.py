"""`modules install|remove` on real directories and archives (agent/modules/install.py),
including archives that try to write outside the module."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from agent.modules.install import InstallError, install, remove
from agent.protocol.manifest import ManifestError
from tests.tools import pinned


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    path = tmp_path / "modules"
    path.mkdir()
    return path


def zipped(source: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(source.rglob("*")):
            z.write(f, prefix + f.relative_to(source).as_posix())
    return archive


def test_install_a_directory_then_update_it_then_remove_it(tmp_path: Path, modules: Path) -> None:
    v1 = pinned.build(tmp_path / "src" / "pinned", "1.0.0", "v1")
    done = install(v1, modules)
    assert (done.directory, done.replaced) == (modules / "pinned", None)
    v2 = pinned.build(tmp_path / "other" / "renamed", "1.0.1", "v2")
    done = install(v2, modules)  # the same key: replaces the installed one, keeps its name
    assert (done.directory, done.replaced) == (modules / "pinned", "1.0.0")
    assert (modules / "pinned" / "data.txt").read_text() == "v2"
    assert sorted(p.name for p in modules.iterdir()) == ["pinned"]  # no staging left
    assert remove(pinned.MODULE, modules) == modules / "pinned"
    assert list(modules.iterdir()) == []
    with pytest.raises(InstallError, match="is not installed"):
        remove(pinned.MODULE, modules)


@pytest.mark.parametrize("prefix", ["", "pinned-1.0.0/"], ids=["flat", "in-a-folder"])
def test_install_a_zip(tmp_path: Path, modules: Path, prefix: str) -> None:
    source = pinned.build(tmp_path / "src", "1.0.0", "v1")
    done = install(zipped(source, tmp_path / "pinned.zip", prefix), modules)
    assert done.directory == modules / (prefix.rstrip("/") or "pinned")
    assert (done.directory / "data.txt").read_text() == "v1"


def test_install_a_tar_gz(tmp_path: Path, modules: Path) -> None:
    source = pinned.build(tmp_path / "pinned", "1.0.0", "v1")
    archive = tmp_path / "pinned.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(source, arcname="pinned")
    assert install(archive, modules).directory == modules / "pinned"


def test_a_zip_reaching_outside_its_root_is_refused_whole(tmp_path: Path, modules: Path) -> None:
    source = pinned.build(tmp_path / "src", "1.0.0", "v1")
    archive = zipped(source, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("../../escaped.txt", "gotcha")
    with pytest.raises(InstallError, match="outside the module"):
        install(archive, modules)
    assert not (tmp_path / "escaped.txt").exists()
    assert list(modules.iterdir()) == []


@pytest.mark.parametrize("attack", ["dotdot", "absolute-link", "link-out"])
def test_a_tar_reaching_outside_its_root_is_refused_whole(
    tmp_path: Path, modules: Path, attack: str
) -> None:
    source = pinned.build(tmp_path / "src", "1.0.0", "v1")
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as t:
        t.add(source, arcname=".")
        if attack == "dotdot":
            member = tarfile.TarInfo("../escaped.txt")
            member.size = 6
            t.addfile(member, io.BytesIO(b"gotcha"))
        else:
            member = tarfile.TarInfo("evil")
            member.type = tarfile.SYMTYPE
            member.linkname = "/etc/passwd" if attack == "absolute-link" else "../../x"
            t.addfile(member)
    with pytest.raises(InstallError, match="not installed"):
        install(archive, modules)
    assert not (tmp_path / "escaped.txt").exists()
    assert list(modules.iterdir()) == []


def test_a_broken_module_is_not_installed(tmp_path: Path, modules: Path) -> None:
    source = pinned.build(tmp_path / "pinned", "1.0.0", "v1")
    (source / "tool.py").unlink()
    with pytest.raises(ManifestError, match="entrypoint"):
        install(source, modules)
    assert list(modules.iterdir()) == []


def test_another_module_in_the_way_is_not_replaced(tmp_path: Path, modules: Path) -> None:
    (modules / "pinned").mkdir()
    (modules / "pinned" / "keep.txt").write_text("mine")
    source = pinned.build(tmp_path / "pinned", "1.0.0", "v1")
    with pytest.raises(InstallError, match="already holds another module"):
        install(source, modules)
    assert (modules / "pinned" / "keep.txt").read_text() == "mine"


def test_not_an_archive(tmp_path: Path, modules: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InstallError, match=r"not a \.zip or tar archive"):
        install(junk, modules)
