"""The modules the agent serves now, changed while it runs: one directory at a time.

`LiveCatalog` is what jobs and the dispatch loop read (`resolve`, `serves`); the module
watcher (watch.py) changes it. A change is made in two steps so that the slow part never
runs on the event loop and the swap is atomic:

1. `prepare(names)` (in a thread): each named directory under `modules_path` is pinned
   (snapshot.py: copied into the state path) and the copy is loaded and checked exactly as at
   start (`load_checked`). Nothing the agent serves changes yet.
2. `commit(loaded)` (on the loop): the results are checked against the other modules served
   (a module key served from two directories is refused) and a new `Catalog` replaces the old
   one in one assignment. A job already validated keeps the `Resolved` it holds, whose
   directory is its own pinned copy.

A directory whose update fails keeps serving the version it served before (`Change.kept`);
a directory that is removed, or loses its manifest, stops serving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from agent.identity import REPORTED_AGENT_VERSION
from agent.modules.catalog import (
    MANIFEST_FILE,
    Catalog,
    FunctionVariantHint,
    InstalledModule,
    Resolved,
    is_module_name,
    load_checked,
)
from agent.modules.snapshot import Unsettled, pin, prune
from agent.protocol.manifest import ManifestError

if TYPE_CHECKING:
    from agent.protocol.push import Offer


class Kind(StrEnum):
    """What happened to one module directory."""

    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"
    FAILED = "failed"  # a new version (or a new module) that cannot be served
    UNCHANGED = "unchanged"
    UNSETTLED = "unsettled"  # still being copied in: looked at again on the next change


@dataclass(frozen=True)
class Loaded:
    """One directory as `prepare` found it (before anything served changed)."""

    name: str
    module: InstalledModule | None = None  # None: no module there (removed, no manifest)
    error: ManifestError | None = None
    unsettled: bool = False


@dataclass(frozen=True)
class Change:
    """What `commit` did with one directory."""

    name: str
    kind: Kind
    module: InstalledModule | None = None  # what it serves now (after ADDED/UPDATED)
    previous: InstalledModule | None = None  # what it served before
    error: ManifestError | None = None

    @property
    def kept(self) -> InstalledModule | None:
        """The version still serving after a failed update (None: none was)."""
        return self.previous if self.kind is Kind.FAILED else None


class LiveCatalog:
    """The current `Catalog`, loaded from `modules_path` and replaced as modules change."""

    def __init__(
        self,
        modules_path: Path,
        store: Path | None,
        agent_version: str = REPORTED_AGENT_VERSION,
    ) -> None:
        self.modules_path = modules_path
        self.store = store  # where pinned copies go (None: serve from modules_path itself)
        self.agent_version = agent_version
        self.current = Catalog()
        self._by_name: dict[str, InstalledModule] = {}  # directory name -> what it serves
        self._errors: dict[str, ManifestError] = {}  # directory name -> why it is not served

    # What jobs and dispatch read: the current catalog's answers.

    @property
    def modules(self) -> tuple[InstalledModule, ...]:
        return self.current.modules

    @property
    def errors(self) -> tuple[ManifestError, ...]:
        return self.current.errors

    def functions(self) -> list[str]:
        return self.current.functions()

    def resolve(
        self, function: str, module_name: str | None, host_os: str, hint: FunctionVariantHint
    ) -> Resolved:
        return self.current.resolve(function, module_name, host_os, hint)

    def serves(self, offer: Offer, host_os: str) -> bool:
        return self.current.serves(offer, host_os)

    # Loading and changing.

    def load(self) -> list[Change]:
        """Load every module directory (at start); what was found."""
        changes = self.commit(self.prepare(self.names()))
        unsettled = [c.name for c in changes if c.kind is Kind.UNSETTLED]
        if unsettled:  # at start nothing is waiting to be retried: load what is there
            changes += self.commit(self.prepare(unsettled, settle=False))
        if not self.modules_path.is_dir():
            error = ManifestError(str(self.modules_path), "modules_path", "not a directory")
            self.current = Catalog((), (error,))
        return changes

    def names(self) -> list[str]:
        """The module directories under `modules_path` now, and those served before."""
        found: set[str] = set(self._by_name) | set(self._errors)
        if self.modules_path.is_dir():
            found |= {p.name for p in self.modules_path.iterdir() if is_module_name(p.name)}
        return sorted(found)

    def prepare(self, names: Iterable[str], *, settle: bool = True) -> list[Loaded]:
        """Pin and load each named directory; blocking (run it in a thread). Touches nothing
        served. With `settle=False` a directory still changing is an error, not retried."""
        return [self._load(name, settle) for name in sorted(set(names)) if is_module_name(name)]

    def _load(self, name: str, settle: bool) -> Loaded:
        source = self.modules_path / name
        if source.is_symlink() and not source.exists():
            problem = "a link that leads nowhere, or to itself (a loop): point it at a module"
            return Loaded(name, error=ManifestError(str(source), "(directory)", problem))
        if not (source / MANIFEST_FILE).is_file():
            return Loaded(name)
        try:
            if self.store is None:
                return Loaded(name, load_checked(source, self.agent_version))
            pinned = pin(source, self.store)
        except Unsettled:
            if settle:
                return Loaded(name, unsettled=True)
            problem = "its files kept changing while the agent read them; try again once copied"
            return Loaded(name, error=ManifestError(str(source), "(files)", problem))
        except OSError as e:
            problem = f"cannot copy the module into the state path: {e}"
            return Loaded(name, error=ManifestError(str(source), "(files)", problem))
        try:
            return Loaded(name, load_checked(pinned, self.agent_version))
        except ManifestError as e:
            return Loaded(name, error=_as_source(e, pinned, source))

    def commit(self, loaded: Iterable[Loaded]) -> list[Change]:
        """Serve what `prepare` loaded (one atomic swap of the catalog); what changed."""
        changes = [self._commit_one(item) for item in loaded]
        ordered = sorted(self._by_name.items())
        self.current = Catalog(
            tuple(m for _, m in ordered), tuple(e for _, e in sorted(self._errors.items()))
        )
        return changes

    def _commit_one(self, item: Loaded) -> Change:
        previous = self._by_name.get(item.name)
        if item.unsettled:
            return Change(item.name, Kind.UNSETTLED, previous=previous)
        if item.module is None and item.error is None:
            self._errors.pop(item.name, None)
            if previous is None:
                return Change(item.name, Kind.UNCHANGED)
            del self._by_name[item.name]
            return Change(item.name, Kind.REMOVED, previous=previous)
        error = item.error or self._clash(item.name, item.module)
        if error is not None:
            self._errors[item.name] = error
            return Change(item.name, Kind.FAILED, previous=previous, error=error)
        assert item.module is not None
        self._errors.pop(item.name, None)
        self._by_name[item.name] = item.module
        if previous is None:
            return Change(item.name, Kind.ADDED, item.module)
        if previous.directory == item.module.directory:
            return Change(item.name, Kind.UNCHANGED, item.module, previous)
        return Change(item.name, Kind.UPDATED, item.module, previous)

    def _clash(self, name: str, module: InstalledModule | None) -> ManifestError | None:
        """A module key already served from another directory: the one serving keeps it."""
        if module is None:
            return None
        for other_name, other in self._by_name.items():
            if other_name != name and other.key == module.key:
                problem = (
                    f"{module.key} is already installed from {self.modules_path / other_name}; "
                    "skipped (remove one of the two directories)"
                )
                path = str(self.modules_path / name / MANIFEST_FILE)
                return ManifestError(path, "module_key", problem)
        return None

    def shared_functions(self) -> dict[str, list[str]]:
        """Function keys served by more than one module: {function: [module keys, in the
        order a job that names no module picks them]}. The platform allows it (a job's
        `module_name` tells them apart), so it is a warning, never a refusal."""
        owners: dict[str, list[str]] = {}
        for module in self.modules:
            for function in module.manifest.functions:
                owners.setdefault(function, []).append(module.key)
        return {f: keys for f, keys in sorted(owners.items()) if len(keys) > 1}

    def prune(self) -> list[Path]:
        """Remove pinned copies nothing serves; call only while no job runs."""
        if self.store is None:
            return []
        return prune(self.store, {m.directory for m in self._by_name.values()})


def _as_source(error: ManifestError, pinned: Path, source: Path) -> ManifestError:
    """The error as a person sees it: naming the module's own files, not the pinned copy."""
    shown, real = str(pinned), str(source)
    problem = error.problem.replace(shown, real)
    return ManifestError(error.path.replace(shown, real), error.field, problem)
