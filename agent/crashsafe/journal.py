"""The journal: jobs in progress and the registry updates the agent owes, kept durably.

Each job this agent holds is recorded from just before its claim is sent to its end, with its
phase and its tool's process identity, so a restarted agent knows what an earlier run left
unfinished and can pick it up again. Each output's revision is recorded before the registry
is asked to create it, and its resource id once created, so an upload resumed after a restart
never registers an artifact twice. A multipart upload of an output is recorded once begun
(salt, sha, upload id, part size, and its presigned part URLs, which are secrets: kept only
while this file is private) and each part once acknowledged, with its ETag, so a restarted
agent sends only the parts missing.

A job's final status is written here (and fsync'd) before the registry is told, and removed
once it has been told. What the registry could not take (an outage longer than the retry
budget, an agent stopped or killed meanwhile) stays, and is delivered later by the daemon,
after a restart too, with the agent id that held the claim. SQLite in the state path, 0600.

Every write survives the agent being killed (SQLite's WAL is in the file system at once).
Only the notes written before the registry is asked to do something that outlives this
machine's power are flushed to the disk before they return (`durable=True`: a claim, a Slurm
job id, an output's revision, a final status); after a power loss the others may roll back
to an earlier note, which recovery handles as it does a kill just before the note (a phase
reported again, an output's create looked up). That saves 9 of the 14 flushes of a job.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.protocol.states import JobStatus

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
    created  REAL NOT NULL,
    reached  TEXT NOT NULL,
    acknowledged TEXT NOT NULL
)
"""

_UPLOADS = """
CREATE TABLE IF NOT EXISTS uploads (
    job_id      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    revision    TEXT NOT NULL,
    resource_id TEXT,
    PRIMARY KEY (job_id, file_name)
)
"""

_MULTIPART = """
CREATE TABLE IF NOT EXISTS multipart (
    job_id      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    sha         TEXT NOT NULL,
    salt        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    upload_id   TEXT NOT NULL,
    part_size   INTEGER NOT NULL,
    urls        TEXT NOT NULL,
    PRIMARY KEY (job_id, file_name)
)
"""

_MULTIPART_PARTS = """
CREATE TABLE IF NOT EXISTS multipart_parts (
    job_id      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    PRIMARY KEY (job_id, file_name, part_number)
)
"""
# PRAGMA user_version. Version 4 added the multipart tables to version 3's (a version 3
# journal is kept, the tables added); journals of any other layout are started afresh.
VERSION = 4
_ADDITIVE_FROM = 3


@dataclass(frozen=True)
class Owed:
    """A final status the registry has not yet acknowledged."""

    job_id: str
    agent_id: str
    status: JobStatus
    message: str
    reached: JobStatus = JobStatus.CLAIMED  # the last phase the job reached here
    acknowledged: JobStatus = JobStatus.CLAIMED  # the last phase the registry took


@dataclass(frozen=True)
class Upload:
    """An output on its way to becoming a registry resource."""

    revision: str  # the NewRevision, as JSON, whose blobs are uploaded
    resource_id: str | None  # set once the registry created it


@dataclass(frozen=True)
class Multipart:
    """A multipart upload of an output, as far as it went (registry/multipart.py)."""

    sha: str
    salt: str
    size: int
    mtime_ns: int
    upload_id: str
    part_size: int
    urls: dict[int, str]  # presigned part URLs: secrets (empty when not kept)
    etags: dict[int, str]  # the parts acknowledged


@dataclass(frozen=True)
class Active:
    """A job this agent was working on, as far as the journal knows."""

    job_id: str
    agent_id: str
    phase: JobStatus
    tool_pid: int | None
    tool_since: float | None


class Journal:
    """The jobs in progress, their uploads and the owed updates of one agent's state path."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)  # presigned part URLs are kept here (secrets): the owner's alone
        self.path = path
        # Whether the file is private (SQLite gives its -wal and -shm files its mode): if it
        # is not (another owner's file), part URLs are not kept and an upload is not resumed.
        self.private = path.stat().st_mode & 0o077 == 0
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # FULL for the durable notes
        self._conn.execute("PRAGMA secure_delete=ON")  # forgotten part URLs leave no trace
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version not in (VERSION, _ADDITIVE_FROM):
            for table in ("owed", "active", "uploads", "multipart", "multipart_parts"):
                self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        for schema in (_SCHEMA, _ACTIVE, _UPLOADS, _MULTIPART, _MULTIPART_PARTS):
            self._conn.execute(schema)
        if version != VERSION:
            self._conn.execute(f"PRAGMA user_version = {VERSION}")

    # -- jobs in progress ---------------------------------------------------------------

    def claiming(self, job_id: str, agent_id: str) -> None:
        """This agent is about to claim `job_id` (phase Pending until `phase(Claimed)`).

        Written before the claim is sent, so a claim whose answer a crash swallowed is found
        at the next start; a lost claim race is `end`ed at once.
        """
        self._note(
            "INSERT OR REPLACE INTO active VALUES (?, ?, ?, NULL, NULL)",
            (job_id, agent_id, JobStatus.PENDING.value),
            durable=True,
        )

    def phase(self, job_id: str, phase: JobStatus) -> None:
        """The job moved to `phase`."""
        self._note("UPDATE active SET phase = ? WHERE job_id = ?", (phase.value, job_id))

    def tool(self, job_id: str, pid: int, since: float) -> None:
        """The tool runs as process `pid`, created at `since` (a reused pid is told apart)."""
        self._note(
            "UPDATE active SET tool_pid = ?, tool_since = ? WHERE job_id = ?",
            (pid, since, job_id),
            durable=True,  # a Slurm job outlives a power loss of the login node
        )

    def end(self, job_id: str) -> None:
        """The job is over for this agent (its final status, if any, is owed or delivered)."""
        self._note("DELETE FROM active WHERE job_id = ?", (job_id,))
        self._note("DELETE FROM uploads WHERE job_id = ?", (job_id,))
        self._note("DELETE FROM multipart WHERE job_id = ?", (job_id,))
        self._note("DELETE FROM multipart_parts WHERE job_id = ?", (job_id,))

    def _note(self, sql: str, args: tuple[object, ...], durable: bool = False) -> None:
        """Write what recovery would want; a full disk is logged, never the job's end."""
        try:
            self._write(sql, args, durable)
        except sqlite3.Error as e:
            log.error("journal.write_failed", error=str(e))  # noqa: TRY400

    def _write(self, sql: str, args: tuple[object, ...], durable: bool) -> None:
        """One statement; flushed to the disk (with every earlier one) before it returns if
        `durable`."""
        if not durable:
            self._conn.execute(sql, args)
            return
        self._conn.execute("PRAGMA synchronous=FULL")
        try:
            self._conn.execute(sql, args)
        finally:
            self._conn.execute("PRAGMA synchronous=NORMAL")

    def unfinished(self) -> list[Active]:
        """Jobs an earlier run of the agent began and never ended (it was killed, or crashed)."""
        rows = self._conn.execute("SELECT job_id FROM active ORDER BY rowid").fetchall()
        return [a for (job_id,) in rows if (a := self.active(job_id)) is not None]

    def active(self, job_id: str) -> Active | None:
        """What the journal knows of `job_id` while it is in progress."""
        row = self._conn.execute("SELECT * FROM active WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        j, a, p, pid, since = row
        return Active(j, a, JobStatus(p), pid, since)

    # -- outputs on their way up --------------------------------------------------------

    def upload(self, job_id: str, file_name: str) -> Upload | None:
        """What an earlier attempt recorded for this output file, if anything."""
        row = self._conn.execute(
            "SELECT revision, resource_id FROM uploads WHERE job_id = ? AND file_name = ?",
            (job_id, file_name),
        ).fetchone()
        return Upload(row[0], row[1]) if row else None

    def uploading(self, job_id: str, file_name: str, revision: str) -> None:
        """The output's blobs are stored; the registry is about to be asked to create it."""
        self._note(
            "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, NULL)",
            (job_id, file_name, revision),
            durable=True,
        )

    def uploaded(self, job_id: str, file_name: str, resource_id: str) -> None:
        """The registry created the output as `resource_id`."""
        self._note(
            "UPDATE uploads SET resource_id = ? WHERE job_id = ? AND file_name = ?",
            (resource_id, job_id, file_name),
        )

    # -- multipart uploads in progress --------------------------------------------------

    def multipart(self, job_id: str, file_name: str) -> Multipart | None:
        """The multipart upload begun for this output file, with its acknowledged parts."""
        row = self._conn.execute(
            "SELECT sha, salt, size, mtime_ns, upload_id, part_size, urls FROM multipart"
            " WHERE job_id = ? AND file_name = ?",
            (job_id, file_name),
        ).fetchone()
        if row is None:
            return None
        parts = self._conn.execute(
            "SELECT part_number, etag FROM multipart_parts WHERE job_id = ? AND file_name = ?",
            (job_id, file_name),
        ).fetchall()
        urls = {int(n): str(u) for n, u in json.loads(row[6]).items()}
        sha, salt, size, mtime_ns, upload_id, part_size = row[:6]
        etags = {int(n): str(e) for n, e in parts}
        return Multipart(sha, salt, size, mtime_ns, upload_id, part_size, urls, etags)

    def multipart_begun(self, job_id: str, file_name: str, upload: Multipart) -> None:
        """A multipart upload was begun for this output file (replacing an earlier one). Its
        part URLs are kept only in a private journal."""
        urls = json.dumps({str(n): u for n, u in upload.urls.items()} if self.private else {})
        key = (job_id, file_name)
        self._note("DELETE FROM multipart_parts WHERE job_id = ? AND file_name = ?", key)
        self._note(
            "INSERT OR REPLACE INTO multipart VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, upload.sha, upload.salt, upload.size, upload.mtime_ns, upload.upload_id,
             upload.part_size, urls),
        )  # fmt: skip

    def part_acknowledged(self, job_id: str, file_name: str, number: int, etag: str) -> None:
        """Part `number` of the output file's multipart upload was acknowledged."""
        self._note(
            "INSERT OR REPLACE INTO multipart_parts VALUES (?, ?, ?, ?)",
            (job_id, file_name, number, etag),
        )

    def multipart_finished(self, job_id: str, file_name: str) -> None:
        """The output file's multipart upload was completed or given up."""
        key = (job_id, file_name)
        self._note("DELETE FROM multipart WHERE job_id = ? AND file_name = ?", key)
        self._note("DELETE FROM multipart_parts WHERE job_id = ? AND file_name = ?", key)

    # -- owed final statuses ------------------------------------------------------------

    def owe(self, owed: Owed) -> None:
        """Record a final status to deliver (replacing an older one for the same job)."""
        self._write(
            "INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                owed.job_id,
                owed.agent_id,
                owed.status.value,
                owed.message,
                time.time(),
                owed.reached.value,
                owed.acknowledged.value,
            ),
            durable=True,
        )

    def paid(self, job_id: str) -> None:
        """The registry has it (or refused it for good): forget it."""
        self._note("DELETE FROM owed WHERE job_id = ?", (job_id,))

    def owed(self) -> list[Owed]:
        """Everything still owed, oldest first."""
        rows = self._conn.execute(
            "SELECT job_id, agent_id, status, message, reached, acknowledged FROM owed"
            " ORDER BY created"
        ).fetchall()
        return [
            Owed(j, a, JobStatus(s), m, JobStatus(r), JobStatus(k)) for j, a, s, m, r, k in rows
        ]

    def owes(self, job_id: str) -> bool:
        """Whether a final status for `job_id` is still owed."""
        row = self._conn.execute("SELECT 1 FROM owed WHERE job_id = ?", (job_id,)).fetchone()
        return row is not None

    def close(self) -> None:
        self._conn.close()
