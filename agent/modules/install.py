"""Installing and removing modules under `modules_path` (`istari-agent modules install|remove`).

A module is staged under a hidden name in `modules_path` (the agent's watcher ignores hidden
names), checked exactly as the agent would load it, and only then renamed into place, so a
running agent never sees half of it. An update of a module already installed (the same module
key) replaces its directory: the old one is renamed aside and removed after the new one is in.

Archives are untrusted: a zip member with an absolute path, a drive letter or `..`, and any
tar member that would land outside the staging directory, or that is a device, a link out of
it or an absolute link (tarfile's `data` filter), refuse the whole archive.
"""

from __future__ import annotations

import contextlib
import shutil
import tarfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent import jsontext
from agent.errors import AgentError
from agent.identity import REPORTED_AGENT_VERSION
from agent.modules.catalog import MANIFEST_FILE, InstalledModule, is_module_name, load_checked

_STAGING = ".installing-"
_REMOVING = ".removing-"


class InstallError(AgentError):
    """A module that cannot be installed or removed (the message says why and what to do)."""


@dataclass(frozen=True)
class Installed:
    """What `install` did."""

    module: InstalledModule
    directory: Path  # where it is installed now
    replaced: str | None  # the version it replaced, if any


def install(
    source: Path, modules_path: Path, agent_version: str = REPORTED_AGENT_VERSION
) -> Installed:
    """Install the module at `source` (a directory, a .zip or a tar archive) into
    `modules_path`; InstallError or ManifestError (from the check) say what is wrong."""
    if not modules_path.is_dir():
        msg = f"{modules_path} is not a directory: create it, or set modules_path"
        raise InstallError(msg)
    staging = modules_path / f"{_STAGING}{uuid.uuid4().hex}"
    try:
        _unpack(source, staging)
        root = _module_root(staging, source)
        module = load_checked(root, agent_version)
        name = _directory_name(source, root, staging)
        existing = installed_directory(modules_path, module.key)
        target = existing or modules_path / name
        if existing is None and target.exists():
            msg = (
                f"{target} already holds another module ({_key_of(target) or 'no manifest'}); "
                f"remove it first, or rename {source.name}"
            )
            raise InstallError(msg)
        replaced = _version_of(target) if existing else None
        _swap_in(root, target)
        return Installed(load_checked(target, agent_version), target, replaced)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove(key: str, modules_path: Path) -> Path:
    """Remove the installed module `key`; the directory it was in (InstallError: none)."""
    directory = installed_directory(modules_path, key)
    if directory is None:
        installed = sorted(k for k in (_key_of(p) for p in _dirs(modules_path)) if k)
        shown = ", ".join(installed) or "none"
        msg = f"{key} is not installed in {modules_path} (installed: {shown})"
        raise InstallError(msg)
    aside = modules_path / f"{_REMOVING}{uuid.uuid4().hex}"
    directory.rename(aside)  # one step for a watching agent: the module is gone
    shutil.rmtree(aside, ignore_errors=True)
    return directory


def installed_directory(modules_path: Path, key: str) -> Path | None:
    """The directory under `modules_path` whose manifest names `key`, if any."""
    for directory in _dirs(modules_path):
        if _key_of(directory) == key:
            return directory
    return None


def _dirs(modules_path: Path) -> list[Path]:
    if not modules_path.is_dir():
        return []
    return sorted(p for p in modules_path.iterdir() if is_module_name(p.name) and p.is_dir())


def _key_of(directory: Path) -> str | None:
    """The module key a directory's manifest names, read leniently (even a broken manifest)."""
    try:
        raw = jsontext.loads((directory / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    key = raw.get("module_key") or raw.get("module_name")
    return key if isinstance(key, str) else None


def _version_of(directory: Path) -> str | None:
    try:
        raw = jsontext.loads((directory / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    version = raw.get("module_version") if isinstance(raw, dict) else None
    return version if isinstance(version, str) else None


def _unpack(source: Path, staging: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, staging, symlinks=True)
        return
    if not source.is_file():
        msg = f"{source} is neither a module directory nor an archive"
        raise InstallError(msg)
    if zipfile.is_zipfile(source):
        _unzip(source, staging)
    elif tarfile.is_tarfile(source):
        _untar(source, staging)
    else:
        msg = f"{source} is not a .zip or tar archive (nor a module directory)"
        raise InstallError(msg)


def _unzip(source: Path, staging: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            path = PurePosixPath(name.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
                msg = f"{source}: member {name!r} would land outside the module; not installed"
                raise InstallError(msg)
        staging.mkdir()
        archive.extractall(staging)  # noqa: S202 - every member name checked above


def _untar(source: Path, staging: Path) -> None:
    staging.mkdir()
    try:
        with tarfile.open(source) as archive:
            archive.extractall(staging, filter="data")
    except tarfile.FilterError as e:
        msg = f"{source}: {e}; not installed (an archive may not reach outside its module)"
        raise InstallError(msg) from None
    except (tarfile.TarError, EOFError) as e:
        msg = f"{source}: not a readable tar archive ({e})"
        raise InstallError(msg) from None


def _module_root(staging: Path, source: Path) -> Path:
    """Where the manifest is: at the top, or in the one directory at the top."""
    if (staging / MANIFEST_FILE).is_file():
        return staging
    entries = [p for p in staging.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    msg = f"{source} has no {MANIFEST_FILE} at its top (nor in a single folder at its top)"
    raise InstallError(msg)


def _directory_name(source: Path, root: Path, staging: Path) -> str:
    """The directory name to install under: the module's own folder name, else the source's."""
    if root != staging:
        name = root.name
    elif source.is_dir():
        name = source.resolve().name
    else:
        name = source.name
        for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
            name = name.removesuffix(suffix)
    if not name or not is_module_name(name):
        msg = f"cannot name a module directory after {source.name!r}: rename it"
        raise InstallError(msg)
    return name


def _swap_in(root: Path, target: Path) -> None:
    """Put `root` at `target`: renamed aside then removed when something was there."""
    aside = target.with_name(f"{_REMOVING}{uuid.uuid4().hex}")
    had = target.exists()
    if had:
        target.rename(aside)
    try:
        root.rename(target)
    except OSError:
        if had:
            with contextlib.suppress(OSError):
                aside.rename(target)  # put the old one back
        raise
    if had:
        shutil.rmtree(aside, ignore_errors=True)
