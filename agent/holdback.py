"""Whether the agent holds back from claiming, and why: paused by a person (`PauseSwitch`),
short of memory or CPU (the resource check), or draining.

While it holds back the agent's status says Paused (agent/agentstatus.py) and `status.json`
says why (`istari-agent status`); running jobs are never touched. It claims again, saying Idle
or its running jobs' phase, as soon as nothing holds it.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from agent import resources
from agent.agentstatus import AgentStatusReporter
from agent.config import Settings
from agent.control import PauseSwitch
from agent.protocol.states import AgentStatus

log = structlog.get_logger("agent.daemon")


def short_of_room(settings: Settings) -> str | None:
    """Why the machine has no room for another job now (memory, load); None when it has."""
    if not (settings.min_free_memory_mb or settings.max_load_per_cpu):
        return None
    now = resources.sample()
    return resources.shortage(now, settings.min_free_memory_mb, settings.max_load_per_cpu)


class Holdback:
    """What holds the agent back from claiming, kept true in its status and status file."""

    def __init__(
        self,
        settings: Settings,
        pause: PauseSwitch,
        status: AgentStatusReporter,
        changed: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.pause = pause
        self.status = status
        self.changed = changed  # the status file is written again
        self.reason: str | None = None  # "paused", "resources" or "draining"; None: claiming
        self.short_of: str | None = None  # why the last resource check said wait

    def check(self, running: int, phase: Callable[[], AgentStatus | None]) -> bool:
        """Whether the agent holds back now; `phase` is the running jobs' (shown when it
        claims again). A person's pause is not second-guessed by the resource check."""
        short = None if self.pause.paused else short_of_room(self.settings)
        if short and not self.short_of:
            log.warning("agent.resources_low", why=short, running=running)
        elif self.short_of and not short:
            log.info("agent.resources_ok")
        self.short_of = short
        reason = "paused" if self.pause.paused else ("resources" if short else None)
        if reason != self.reason:
            self.reason = reason
            self.status.accepting(reason is None, phase())
            self.changed()
        return reason is not None

    def drain(self) -> None:
        """The agent is stopping: it claims nothing more, whatever else holds."""
        self.reason = "draining"
        self.status.accepting(False)
        self.changed()
