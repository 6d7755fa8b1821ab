"""Reloading the configuration while the agent runs (SIGHUP, `istari-agent reload`): which
changed settings apply live and which wait for a restart, and the task that does the reload.

`diff_reload` is pure: it compares the settings in force with the ones just read and sorts
each changed setting into applied (a closed allow-list, `LIVE`, each entry saying why it is
safe) or refused (everything else, with the line that says why and what to do). The
`Reloader` reads the configuration again from the same sources the agent started with (the
CLI hands over how, as a `Source`), has the daemon swap in one new frozen `Settings` holding
the applied values, logs `config.reloaded`, and writes the answer to `reload.json` in the
state path for `istari-agent reload`. A configuration that no longer reads or validates is
refused whole (`config.reload_failed`): the agent goes on with the settings it has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from agent import control, logs
from agent.config import ConfigError, Settings
from agent.systemd import Systemd

log = structlog.get_logger(__name__)

RESTART = "restart it (systemctl restart istari-agent)"

# The settings a reload applies, and why that is safe. New jobs start with the new values;
# a job already running keeps the settings it started with.
LIVE: dict[str, str] = {
    "log_level": "logging is configured again at once",
    "poll_interval": "read for every wait between looks",
    "push_poll_interval": "read for every wait between looks",
    "push_poll_max_interval": "read for every wait between looks",
    "max_concurrent_jobs": "read before every claim: more slots claim at once, fewer let the "
    "running jobs finish",
    "agent_pools": "the agent joins the added pools and leaves the removed ones in the registry",
    "module_configurations": "written into each new job's work directory",
    "min_free_memory_mb": "read before every claim",
    "max_load_per_cpu": "read before every claim",
    "drain_timeout": "read when a drain starts",
    "process_timeout": "read when a job's tool starts",
    "kill_grace": "read when a job's tool is stopped (new jobs)",
    "cancel_check_interval": "read by each new job's cancel watch",
    "keep_work_dirs": "read when a job ends (new jobs)",
    "progress_report_interval": "read by each new job",
    "resource_sample_interval": "read by each new job",
    "max_work_dir_mb": "read by each new job",
    "max_log_upload_mb": "read by each new job",
    "upload_pool_size": "read by each new job",
    "download_retry_limit": "read by each new job",
    "upload_retry_limit": "read by each new job",
    "headless_mode": "accepted, no effect",
    "allow_module_version_mismatch": "read when each new job is validated",
}

# Why the others cannot change while the agent runs (the default: read once at start).
_WHY: dict[str, str] = {
    "registry_api_url": "the registry session and the agent's registration are made at start",
    "registry_api_token": "the registry session is authenticated at start",
    "registry_api_credentials": "the registry session is authenticated at start",
    "registry_api_credentials_file": "the registry session is authenticated at start",
    "registry_identity_url": "the registry session is authenticated at start",
    "registry_ca_file": "the registry's TLS is set up at start",
    "registry_cert_file": "the registry's TLS is set up at start",
    "registry_key_file": "the registry's TLS is set up at start",
    "registry_tls_verify": "the registry's TLS is set up at start",
    "state_path": "it holds the running agent's lock, journal and identity",
    "cache_max_gb": "the input cache is opened with its bound at start",
    "output_path": "running and unfinished jobs' work directories are found under it",
    "modules_path": "the modules are loaded, pinned and watched from it since the start",
    "watch_modules": "the module watcher is started (or not) at start",
    "agent_version": "it is reported to the registry at registration",
    "host_os": "it is reported to the registry at registration",
    "display_name": "it is reported to the registry at registration",
    "publish_modules": "modules are published at start",
    "private_key_path": "the key for job credentials is loaded at start",
    "executor": "the tool backends are set up at start",
    "module_executors": "the tool backends are set up at start",
    "retry_budget": "the agent's status reporter took it at start",
    "status_update_retry_limit": "the agent's status reporter took it at start",
    "status_retry_budget": "the owed final statuses took it at start",
    "run_retention_days": "run records are pruned at start",
    "run_retention_count": "run records are pruned at start",
}
_STARTED_WITH = {  # prefix -> why (the push connection, the HTTP listener, Slurm)
    "mqtt_": "the push connection is made at start",
    "http_": "the HTTP listener is set up at start",
    "slurm_": "the Slurm backend is set up at start",
}


def why_refused(setting: str) -> str:
    """The one line saying that `setting` cannot change live, why, and what to do (no value)."""
    why = _WHY.get(setting) or next(
        (w for prefix, w in _STARTED_WITH.items() if setting.startswith(prefix)),
        "it is read once at start",
    )
    return f"{setting} cannot change while the agent runs ({why}): {RESTART}"


@dataclass(frozen=True)
class Refused:
    """A changed setting the running agent keeps its old value for, and why."""

    setting: str
    reason: str


@dataclass(frozen=True)
class ReloadPlan:
    """What a reload found: the settings that changed, those applied, those refused.

    Names only, never values: a value may be a secret (a token, a module's licence password).
    """

    changed: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    refused: tuple[Refused, ...] = ()

    def settings(self, old: Settings, new: Settings) -> Settings:
        """The settings to run with: `old`, with the applied values of `new` (the rest kept)."""
        return old.model_copy(update={name: getattr(new, name) for name in self.applied})

    def refuse(self, setting: str, reason: str) -> ReloadPlan:
        """This plan with `setting` moved from applied to refused (applying it failed)."""
        return ReloadPlan(
            self.changed,
            tuple(a for a in self.applied if a != setting),
            (*self.refused, Refused(setting, reason)),
        )


def diff_reload(old: Settings, new: Settings) -> ReloadPlan:
    """Sort the settings that differ between `old` and `new` into applied and refused (pure).

    Secrets compare by value (SecretStr does), and are named, never shown.
    """
    changed = tuple(n for n in type(old).model_fields if getattr(old, n) != getattr(new, n))
    return ReloadPlan(
        changed,
        tuple(n for n in changed if n in LIVE),
        tuple(Refused(n, why_refused(n)) for n in changed if n not in LIVE),
    )


@dataclass(frozen=True)
class Source:
    """How to read the running agent's configuration again: the same file and flags it
    started with, and its own environment (a running process's cannot change). The CLI
    makes it; `load` raises ConfigError for a configuration that cannot be used."""

    load: Callable[[], Settings]
    log_level: Callable[[str], None] = logs.configure  # applies a reloaded log level
    path: Path | None = None  # the file, for the log
    note: str | None = None  # said with every answer (e.g. a systemd credential copy)


def credential_copy_note(config_file: Path | None, credentials_dir: str | None) -> str | None:
    """What to tell people when the file is systemd's credential copy (pure): systemd made it
    at start and refreshes it on reload only when the unit asks for that."""
    if not credentials_dir or config_file is None:
        return None
    if not config_file.is_relative_to(credentials_dir):
        return None
    return (
        f"{config_file} is systemd's copy of the configuration (LoadCredential=), made at "
        "start: a reload sees an edited file only when the unit has "
        "RefreshOnReload=credentials (systemd 260 and later); otherwise restart"
    )


class Reloadable(Protocol):
    """What a reload changes: the daemon (its settings in force, and how it takes new ones)."""

    @property
    def settings(self) -> Settings:
        """The settings in force."""
        ...

    async def apply_reload(self, plan: ReloadPlan, new: Settings) -> ReloadPlan:
        """Swap in `plan.settings(old, new)`; the plan as applied (a change may fail)."""
        ...

    def describe(self) -> str:
        """What the agent is doing, in a few words (systemd's status line)."""
        ...


@dataclass
class Reloader:
    """Reloads on request (SIGHUP), one at a time, from the daemon's TaskGroup."""

    state_path: Path
    source: Source | None = None
    systemd: Systemd = field(default_factory=Systemd)
    done: int = 0  # reloads answered by this process (the answers' sequence numbers)
    _requested: asyncio.Event = field(default_factory=asyncio.Event)

    def request(self) -> None:
        """Reload soon (the SIGHUP handler: it only records the request). Requests that
        arrive during a reload make one more reload after it, which reads the file again."""
        self._requested.set()

    async def run(self, target: Reloadable) -> None:
        """Reload `target` whenever asked, until cancelled."""
        while True:
            await self._requested.wait()
            self._requested.clear()
            await self.once(target)

    async def once(self, target: Reloadable) -> dict[str, Any]:
        """One reload; the answer, as written to reload.json."""
        started = time.time()
        self.systemd.reloading()
        try:
            answer = await self._reload(target)
        finally:
            self.systemd.reloaded(target.describe())
        self.done += 1
        answer.update(seq=self.done, started=started, finished=time.time())
        if self.source is not None and self.source.note:
            answer["note"] = self.source.note
        try:
            control.write_reload_answer(self.state_path, answer)
        except OSError as e:
            log.warning("config.reload_answer_failed", path=str(self.state_path), error=str(e))
        return answer

    async def _read(self) -> Settings | str:
        """The configuration read again, or why it cannot be used."""
        if self.source is None:
            return "this agent was not started from a configuration it can read again"
        try:
            return await asyncio.to_thread(self.source.load)
        except ConfigError as e:
            return str(e)

    async def _reload(self, target: Reloadable) -> dict[str, Any]:
        new = await self._read()
        if isinstance(new, str):
            log.error("config.reload_failed", error=new, kept="the settings in force")
            return {"ok": False, "error": new}
        plan = await target.apply_reload(diff_reload(target.settings, new), new)
        refused = [{"setting": r.setting, "reason": r.reason} for r in plan.refused]
        log.info(
            "config.reloaded",
            file=str(self.source.path) if self.source and self.source.path else None,
            changed=list(plan.changed),
            applied=list(plan.applied),
            refused=refused,
        )
        for r in plan.refused:
            log.warning("config.reload_refused", setting=r.setting, reason=r.reason)
        if "log_level" in plan.applied and self.source is not None:
            self.source.log_level(new.log_level)  # last: the lines above go out at the old one
        return {
            "ok": True,
            "changed": list(plan.changed),
            "applied": list(plan.applied),
            "refused": refused,
        }
