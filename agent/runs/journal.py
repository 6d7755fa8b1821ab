"""The journal: jobs in progress and the registry updates the agent owes, kept durably.

Each job this agent holds is recorded from its claim to its end, with its phase and its
tool's process identity, so a restarted agent knows what an earlier run left unfinished.

A job's final status is written here (and fsync'd) before the registry is told, and removed
once it has been told. What the registry could not take (an outage longer than the retry
budget, an agent stopped or killed meanwhile) stays, and is delivered later by the daemon,
after a restart too, with the agent id that held the claim. SQLite in the state path, 0600.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.jobs.states import JobStatus

log = structlog.get_logger(__name__)

_ACTIVE = """
CREATE TABLE IF NOT EXISTS active (
    job_id      TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    phase       TEXT NOT NULL,
    tool_pid    INTEGER,
    tool_since  REAL
)
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS owed (
    job_id   TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    status   TEXT NOT NULL,
    message  TEXT NOT NULL,
    created  REAL NOT NULL
)
"""


@dataclass(frozen=True)
class Owed:
    """A final status the registry has not yet acknowledged."""

    job_id: str
    agent_id: str
    status: JobStatus
    message: str


@dataclass(frozen=True)
class Active:
    """A job this agent was working on, as far as the journal knows."""

    job_id: str
    agent_id: str
    phase: JobStatus
    tool_pid: int | None
    tool_since: float | None


class Journal:
    """The owed updates of one agent's state path."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # durable before the registry is told
        self._conn.execute(_SCHEMA)
        self._conn.execute(_ACTIVE)

    # -- jobs in progress ---------------------------------------------------------------

    def begin(self, job_id: str, agent_id: str) -> None:
        """This agent holds the claim on `job_id` from now until `end`."""
        self._note(
            "INSERT OR REPLACE INTO active VALUES (?, ?, ?, NULL, NULL)",
            (job_id, agent_id, JobStatus.CLAIMED.value),
        )

    def phase(self, job_id: str, phase: JobStatus) -> None:
        """The job moved to `phase`."""
        self._note("UPDATE active SET phase = ? WHERE job_id = ?", (phase.value, job_id))

    def tool(self, job_id: str, pid: int, since: float) -> None:
        """The tool runs as process `pid`, created at `since` (a reused pid is told apart)."""
        self._note(
            "UPDATE active SET tool_pid = ?, tool_since = ? WHERE job_id = ?", (pid, since, job_id)
        )

    def end(self, job_id: str) -> None:
        """The job is over for this agent (its final status, if any, is owed or delivered)."""
        self._note("DELETE FROM active WHERE job_id = ?", (job_id,))

    def _note(self, sql: str, args: tuple[object, ...]) -> None:
        """Write what recovery would want; a full disk is logged, never the job's end."""
        try:
            self._conn.execute(sql, args)
        except sqlite3.Error as e:
            log.error("journal.write_failed", error=str(e))  # noqa: TRY400

    def unfinished(self) -> list[Active]:
        """Jobs an earlier run of the agent began and never ended (it was killed, or crashed)."""
        rows = self._conn.execute("SELECT * FROM active").fetchall()
        return [Active(j, a, JobStatus(p), pid, since) for j, a, p, pid, since in rows]

    # -- owed final statuses ------------------------------------------------------------

    def owe(self, owed: Owed) -> None:
        """Record a final status to deliver (replacing an older one for the same job)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?, ?)",
            (owed.job_id, owed.agent_id, owed.status.value, owed.message, time.time()),
        )

    def paid(self, job_id: str) -> None:
        """The registry has it (or refused it for good): forget it."""
        self._conn.execute("DELETE FROM owed WHERE job_id = ?", (job_id,))

    def owed(self) -> list[Owed]:
        """Everything still owed, oldest first."""
        rows = self._conn.execute(
            "SELECT job_id, agent_id, status, message FROM owed ORDER BY created"
        ).fetchall()
        return [Owed(j, a, JobStatus(s), m) for j, a, s, m in rows]

    def close(self) -> None:
        self._conn.close()
