"""What every job needs from the agent that runs it, gathered once at start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from agent.agentstatus import AgentStatusReporter
from agent.cache.shared import InputCache
from agent.config import Settings
from agent.crashsafe.journal import Journal
from agent.crashsafe.owed import OwedUpdates
from agent.execution.base import Backend, LaunchError
from agent.metrics import Metrics
from agent.modules.live import LiveCatalog
from agent.registry.client import RegistryClient
from agent.registry.retry import with_retries
from agent.runs.store import RunRecords

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """The agent's settings, registry, modules and tool launcher, shared by its jobs."""

    settings: Settings
    client: RegistryClient
    catalog: LiveCatalog  # what the agent serves now (the module watcher changes it)
    host_os: str
    agent_id: str
    backend: Backend
    tool_env: Mapping[str, str]  # the environment tools start with (no agent secrets)
    agent_status: AgentStatusReporter
    owed: OwedUpdates  # final statuses: journaled, sent, re-sent until they land
    journal: Journal  # jobs in progress, so a restarted agent knows what was left
    metrics: Metrics = field(default_factory=Metrics)
    agent_key: rsa.RSAPrivateKey | None = None  # opens the credentials delivered with jobs
    slurm: Backend | None = None  # for modules the config sends to Slurm
    records: RunRecords | None = None  # one record per job run (runs list|show)
    cache: InputCache | None = None  # downloaded inputs by address (None: cache_max_gb = 0)

    def executor(self, module_key: str) -> str:
        """Where `module_key`'s tools run: "local" or "slurm" (per module, else for all)."""
        return self.settings.module_executors.get(module_key, self.settings.executor)

    def backend_for(self, module_key: str) -> Backend:
        """The backend that runs `module_key`'s tools (LaunchError if it is not set up)."""
        if self.executor(module_key) == "slurm":
            if self.slurm is None:
                msg = f"{module_key} runs through Slurm, but this agent has no Slurm backend"
                raise LaunchError(msg)
            return self.slurm
        return self.backend

    async def retrying(
        self, call: Callable[[], Awaitable[T]], *, what: str, retries: int | None = None
    ) -> T:
        """`call()`, tried again for `retry_budget` seconds while the registry fails (retry.py),
        and at most `retries` times more when given (a `*_retry_limit` setting).
        """
        return await with_retries(
            call, budget=self.settings.retry_budget, what=what, retries=retries
        )
