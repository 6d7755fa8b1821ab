"""Watching `modules_path` while the agent runs: a module added, updated or removed is served
(or no longer served) and reported without a restart.

watchfiles (inotify, batched) tells which module directories changed. Each is loaded again
(live.py: pinned, checked, swapped in atomically); for each one that changed, the agent's
status in the registry reads `UpdatingModule` and then `SuccessfulModuleUpdate` or
`FailedModuleUpdate`, the module set is reported (and published, with `publish_modules`), and
the dispatch loop is woken so that a job waiting for the new function is claimed at once.

Files arrive one by one when a module is copied in, so a directory is only loaded once it has
been quiet (no event) for `QUIET` seconds (a timer wakes the watcher when the first one is
due; with nothing waiting, only file events wake it). A copy whose files still changed while it
was being pinned (a pause longer than `QUIET` in the middle of a copy) is waited for again. A
failure that stands once the directory is quiet is reported once; the version served before
keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog
from watchfiles import awatch
from watchfiles.main import FileChange

from agent.modules.catalog import InstalledModule
from agent.modules.live import Change, Kind, LiveCatalog, Loaded
from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.models import ModuleVersionRef
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

STEP_MS = 50  # a batch of file events ends after this long without another
QUIET = 0.3  # seconds without an event before a changed directory is loaded
TICK = 0.02  # seconds past a directory's quiet time before it is looked at
REPORT_RETRY = 5.0  # seconds between tries to report the module set to an absent registry


class ModuleWatcher:
    """Keeps a `LiveCatalog` in step with `modules_path` and tells the registry."""

    def __init__(
        self,
        live: LiveCatalog,
        client: RegistryClient,
        agent_id: str,
        set_status: Callable[[AgentStatus], None],
        *,
        publish: bool,
        retry_budget: float,
        after_update: Callable[[], None],
        idle: Callable[[], bool],
    ) -> None:
        self.live = live
        self._client = client
        self._agent_id = agent_id
        self._set_status = set_status
        self._publish = publish
        self._budget = retry_budget
        self._after_update = after_update  # the daemon: status back to Idle/the jobs', wake up
        self._idle = idle  # no job runs (pinned copies may be pruned)
        self._last_event: dict[str, float] = {}
        self._settling: set[str] = set()
        self._report_owed = False  # the module set changed but the registry has not heard
        self.updates = 0  # module changes applied (for tests and `status`)

    async def run(self) -> None:
        """Watch until cancelled. A modules path that does not exist is logged, not watched.

        The watcher costs nothing while nothing changes: it wakes for file events, and on a
        timer only while a directory is waiting to be quiet (or the registry is owed the
        module set).
        """
        path = self.live.modules_path
        if not path.is_dir():
            log.warning("modules.not_watched", path=str(path), why="not a directory")
            return
        batches: asyncio.Queue[set[FileChange]] = asyncio.Queue()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_feed(path, batches), name="module events")
            # The feeder's first step set the inotify watches (watchfiles does so before it
            # first waits): what changed between the start's load and now is caught here.
            await asyncio.sleep(0)
            log.info("modules.watching", path=str(path))
            await self.changed(set(self.live.names()))
            while True:
                try:
                    batch = await asyncio.wait_for(batches.get(), self._next_due())
                except TimeoutError:
                    batch = set()
                await self.changed(self._names(batch, path))

    def _next_due(self) -> float | None:
        """Seconds until a directory waiting to be quiet is due (None: nothing waits)."""
        now = time.monotonic()
        due = [self._last_event.get(n, 0.0) + QUIET - now for n in self._settling]
        if self._report_owed:
            due.append(REPORT_RETRY)
        return max(0.0, min(due)) + TICK if due else None

    def _names(self, batch: Iterable[tuple[object, str]], root: Path) -> set[str]:
        """The module directories (names directly under `root`) the events touched."""
        now = time.monotonic()
        names: set[str] = set()
        for _, changed in batch:
            try:
                rel = Path(changed).relative_to(root)
            except ValueError:
                continue
            if rel.parts:
                names.add(rel.parts[0])
        for name in names:
            self._last_event[name] = now
        return names

    async def changed(self, names: set[str]) -> list[Change]:
        """Load again the directories that changed and have been quiet since; serve what
        changed. (`names` without an event time, as at the first look, are due at once.)"""
        now = time.monotonic()
        self._settling |= names
        due = {n for n in self._settling if now - self._last_event.get(n, 0.0) >= QUIET}
        if not due:
            if self._report_owed and not self._settling:
                await self._report()
            return []
        loaded = await asyncio.to_thread(self.live.prepare, due)
        ready: list[Loaded] = []
        for item in loaded:
            if item.unsettled:  # changed while it was copied: wait for it to be quiet again
                self._last_event[item.name] = time.monotonic()
                continue
            self._settling.discard(item.name)
            ready.append(item)
        self._settling -= due - {item.name for item in loaded}  # hidden names: never modules
        changes = [c for c in self.live.commit(ready) if c.kind is not Kind.UNCHANGED]
        if changes:
            await self._serve(changes)
        elif self._report_owed:
            await self._report()
        return changes

    async def _serve(self, changes: list[Change]) -> None:
        """Report the changes: UpdatingModule and how it ended, for each in turn (the first
        UpdatingModule covers telling the registry)."""
        self._set_status(AgentStatus.UPDATING_MODULE)
        for change in changes:
            _log_change(change)
        self._report_owed = True
        new = [c.module for c in changes if c.module is not None]
        await self._report(new if self._publish else [])
        for i, change in enumerate(changes):
            if i:
                self._set_status(AgentStatus.UPDATING_MODULE)
            failed = change.kind is Kind.FAILED
            self._set_status(
                AgentStatus.FAILED_MODULE_UPDATE if failed else AgentStatus.SUCCESSFUL_MODULE_UPDATE
            )
        warn_shared(self.live)
        self.updates += len(changes)
        self._after_update()
        if self._idle():
            removed = await asyncio.to_thread(self.live.prune)
            if removed:
                log.debug("modules.pruned", copies=len(removed))

    async def _report(self, publish: list[InstalledModule] | None = None) -> None:
        """Publish new versions (with `publish_modules`) and report the whole module set.

        A registry that is away is retried for the retry budget, then on the next tick.
        """
        for module in publish or []:
            try:
                await with_retries(
                    functools.partial(self._client.publish_module, module.raw),
                    budget=self._budget,
                    what="publish module",
                )
            except RegistryError as e:
                log.warning("module.publish_refused", module=module.key, error=str(e))
        refs = [
            ModuleVersionRef(module_name=m.key, module_version=m.version) for m in self.live.modules
        ]
        try:
            await with_retries(
                lambda: self._client.set_agent_modules(self._agent_id, refs),
                budget=self._budget,
                what="report modules",
            )
        except RegistryError as e:
            log.warning("modules.report_failed", error=str(e), retry="on the next change or tick")
            return
        self._report_owed = False
        log.info("modules.reported", modules=[f"{r.module_name}@{r.module_version}" for r in refs])


async def _feed(path: Path, batches: asyncio.Queue[set[FileChange]]) -> None:
    """Put each batch of file events under `path` on `batches` (watchfiles, inotify)."""
    async for batch in awatch(path, step=STEP_MS, recursive=True):
        batches.put_nowait(batch)


def warn_shared(live: LiveCatalog) -> None:
    """One warning for each function key that more than one installed module serves."""
    for function, keys in live.shared_functions().items():
        log.warning(
            "module.function_shared",
            function=function,
            modules=keys,
            hint=f"jobs that name no module run {keys[0]}'s; jobs that name one run that one",
        )


def _log_change(change: Change) -> None:
    module, previous, error = change.module, change.previous, change.error
    if change.kind is Kind.ADDED and module is not None:
        log.info("module.added", module=module.key, version=module.version,
                 functions=sorted(module.manifest.functions), directory=change.name)  # fmt: skip
    elif change.kind is Kind.UPDATED and module is not None and previous is not None:
        log.info("module.updated", module=module.key, version=module.version,
                 previous_version=previous.version, directory=change.name)  # fmt: skip
    elif change.kind is Kind.REMOVED and previous is not None:
        log.info("module.removed", module=previous.key, version=previous.version,
                 directory=change.name)  # fmt: skip
    elif change.kind is Kind.FAILED and error is not None:
        kept = change.kept
        log.warning(
            "module.update_failed",
            path=error.path,
            field=error.field,
            problem=error.problem,
            still_serving=f"{kept.key}@{kept.version}" if kept else None,
        )
