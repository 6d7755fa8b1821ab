"""The journal: registry updates the agent owes, kept durably until the registry has them.

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

from agent.jobs.states import JobStatus

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
