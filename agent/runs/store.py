"""Run records: one durable record per job run, kept in the state path (`runs.sqlite3`, 0600).

A record holds what people ask afterwards: which job and function ran where, each phase as a
step with its start and end, the outcome, its message and exit code, the tool's wall time,
the inputs (names, sizes, shas; never a credential's content), the outputs with their
artifact ids, the log entries and progress the tool reported, and samples of the CPU and
memory its process tree used. Writing a record never fails a job: a full disk is logged and
the job goes on. Old records go by age and by count (`prune`).
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import structlog

from agent.runs.model import Entry, Run, RunFilter, Sample, Step
from agent.safeopen import open_regular

log = structlog.get_logger(__name__)

RECORDS = "runs.sqlite3"  # in the state path
LOG_KEEP = 10 * 2**20  # bytes of a run's log kept with its record (the end, if longer)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, agent_id TEXT NOT NULL, function TEXT NOT NULL,
    module TEXT NOT NULL, module_version TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    status TEXT NOT NULL, reason TEXT, message TEXT, exit_code INTEGER,
    inputs TEXT NOT NULL DEFAULT '[]', outputs TEXT NOT NULL DEFAULT '[]',
    wall_s REAL, cpu_s REAL, peak_rss_kb INTEGER
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    phase TEXT NOT NULL, started REAL NOT NULL, ended REAL, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS entries (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, time REAL NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL, tags TEXT NOT NULL, progress REAL
);
CREATE INDEX IF NOT EXISTS entries_run ON entries(run_id);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, time REAL NOT NULL,
    cpu_percent REAL NOT NULL, rss_kb INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id);
"""


class RunRecords:
    """The run records of one state path."""

    def __init__(self, path: Path) -> None:
        self.logs = path.parent / "run-logs"  # <run id>.log, 0600
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # A record is not the journal: a power cut may lose its last lines (never corrupt it),
        # and no write waits for the disk. An agent that is killed loses nothing.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def _write(self, sql: str, args: tuple[Any, ...], *more: tuple[str, tuple[Any, ...]]) -> None:
        """Run the statements in one transaction (a failure is logged, never raised)."""
        try:
            with self._conn:  # BEGIN ... COMMIT, or ROLLBACK on an error
                self._conn.execute("BEGIN")
                for statement, values in ((sql, args), *more):
                    self._conn.execute(statement, values)
        except sqlite3.Error as e:  # a record is worth less than the job it records
            log.error("run.record_failed", error=str(e))  # noqa: TRY400

    # -- written by the runner ----------------------------------------------------------------

    def begin(self, job_id: str, agent_id: str, function: str, module: str, version: str) -> str:
        """A new record for a run of `job_id`; its id."""
        run_id = str(uuid.uuid4())
        self._write(
            "INSERT INTO runs(id, job_id, agent_id, function, module, module_version, started, "
            "status) VALUES (?, ?, ?, ?, ?, ?, ?, 'Claimed')",
            (run_id, job_id, agent_id, function, module, version, time.time()),
        )
        return run_id

    def step(self, run_id: str, phase: str) -> None:
        """The run entered `phase` (the previous step ends now)."""
        now = time.time()
        self._write(
            "UPDATE steps SET ended = ? WHERE run_id = ? AND ended IS NULL", (now, run_id),
            ("INSERT INTO steps(run_id, seq, phase, started) VALUES "
             "(?, (SELECT COUNT(*) FROM steps WHERE run_id = ?), ?, ?)",
             (run_id, run_id, phase, now)),
            ("UPDATE runs SET status = ? WHERE id = ?", (phase, run_id)),
        )  # fmt: skip

    def inputs(self, run_id: str, inputs: list[dict[str, Any]]) -> None:
        self._write("UPDATE runs SET inputs = ? WHERE id = ?", (json.dumps(inputs), run_id))

    def outputs(self, run_id: str, outputs: list[dict[str, Any]]) -> None:
        self._write("UPDATE runs SET outputs = ? WHERE id = ?", (json.dumps(outputs), run_id))

    def resources(
        self, run_id: str, wall: float, cpu: float | None, peak_rss_kb: int | None
    ) -> None:
        """What the tool used (cpu and peak RSS where the backend can tell)."""
        self._write(
            "UPDATE runs SET wall_s = ?, cpu_s = ?, peak_rss_kb = ? WHERE id = ?",
            (wall, cpu, peak_rss_kb, run_id),
        )

    def end(
        self, run_id: str, status: str, reason: str, message: str, exit_code: int | None
    ) -> None:
        """The run ended with this outcome (the last step ends too)."""
        now = time.time()
        self._write(
            "UPDATE steps SET ended = ? WHERE run_id = ? AND ended IS NULL", (now, run_id),
            ("UPDATE runs SET ended = ?, status = ?, reason = ?, message = ?, exit_code = ? "
             "WHERE id = ?", (now, status, reason, message, exit_code, run_id)),
        )  # fmt: skip

    # -- read by the CLI and the HTTP API -----------------------------------------------------

    def entry(self, run_id: str, e: Entry) -> None:
        """A log entry (and progress) the tool reported."""
        self._write(
            "INSERT INTO entries(run_id, time, level, message, tags, progress) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, e.time, e.level, e.message, json.dumps(e.tags), e.progress),
        )

    def sample(self, run_id: str, s: Sample) -> None:
        """What the tool's process tree used at one moment."""
        self._write(
            "INSERT INTO samples(run_id, time, cpu_percent, rss_kb) VALUES (?, ?, ?, ?)",
            (run_id, s.time, s.cpu_percent, s.rss_kb),
        )

    # -- read by the CLI and the HTTP API -----------------------------------------------------

    def list(self, f: RunFilter | None = None) -> list[Run]:
        """One page of runs, the most recent first (without their steps and entries)."""
        f = f or RunFilter()
        where, args = _where(f)
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM runs {where} "  # noqa: S608 (no value is interpolated)
            "ORDER BY started DESC, rowid DESC LIMIT ? OFFSET ?",
            (*args, f.limit, f.offset),
        ).fetchall()
        return [_run(row) for row in rows]

    def count(self, f: RunFilter | None = None) -> int:
        """How many runs the filter matches, over all pages."""
        where, args = _where(f or RunFilter())
        (n,) = self._conn.execute(f"SELECT COUNT(*) FROM runs {where}", args).fetchone()  # noqa: S608
        return int(n)

    def get(self, run_id: str) -> Run | None:
        """One run with its steps and entries; a unique start of its id (or its job's) will do.

        None when nothing matches, or when the start is shared by runs of different jobs (a
        job run more than once is its newest run).
        """
        start = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' "  # noqa: S608
            "OR job_id LIKE ? ESCAPE '\\' ORDER BY id = ? DESC, started DESC, rowid DESC",
            (run_id, start, start, run_id),
        ).fetchall()
        if not rows or (rows[0][0] != run_id and len({r[1] for r in rows}) > 1):
            return None
        found = _run(rows[0])
        steps = self._conn.execute(
            "SELECT phase, started, ended FROM steps WHERE run_id = ? ORDER BY seq", (found.id,)
        ).fetchall()
        entries = self._conn.execute(
            "SELECT time, level, message, tags, progress FROM entries WHERE run_id = ? "
            "ORDER BY rowid",
            (found.id,),
        ).fetchall()
        return Run(**{
            **found.__dict__,
            "steps": [Step(*s) for s in steps],
            "entries": [Entry(t, lv, m, json.loads(tags), p) for t, lv, m, tags, p in entries],
        })  # fmt: skip

    def samples(self, run_id: str) -> builtins.list[Sample]:
        """The run's resource samples, oldest first."""
        rows = self._conn.execute(
            "SELECT time, cpu_percent, rss_kb FROM samples WHERE run_id = ? ORDER BY time",
            (run_id,),
        ).fetchall()
        return [Sample(*row) for row in rows]

    def keep_log(self, run_id: str, log_file: Path) -> None:
        """Keep (the end of) the run's log with its record."""
        try:
            self.logs.mkdir(mode=0o700, exist_ok=True)
            with open_regular(log_file) as src:  # in the work dir: never through a link
                size = src.seek(0, 2)
                src.seek(max(0, size - LOG_KEEP))
                data = src.read()
            target = self.log_path(run_id)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError as e:
            log.warning("run.log_unkept", error=str(e))

    def log_path(self, run_id: str) -> Path:
        return self.logs / f"{run_id}.log"

    def delete(self, run_id: str) -> bool:
        """Delete one run (and its kept log); whether there was one."""
        gone = self._conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
        self.log_path(run_id).unlink(missing_ok=True)
        return bool(gone)

    def prune(self, max_age_days: float, max_count: int) -> int:
        """Delete runs older than `max_age_days` or beyond the newest `max_count`; how many."""
        cutoff = time.time() - max_age_days * 86400
        doomed = self._conn.execute(
            "SELECT id FROM runs WHERE ended IS NOT NULL AND (started < ? OR id NOT IN "
            "(SELECT id FROM runs ORDER BY started DESC, rowid DESC LIMIT ?))",
            (cutoff, max_count),
        ).fetchall()
        return sum(self.delete(run_id) for (run_id,) in doomed)


_COLUMNS = (
    "id, job_id, agent_id, function, module, module_version, started, ended, status, reason, "
    "message, exit_code, inputs, outputs, wall_s, cpu_s, peak_rss_kb, (SELECT progress FROM "
    "entries WHERE run_id = runs.id AND progress IS NOT NULL ORDER BY rowid DESC LIMIT 1)"
)


def _where(f: RunFilter) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause of a listing and its arguments (values are always bound)."""
    clauses: list[str] = []
    args: list[Any] = []
    if f.status:
        clauses.append("status = ?")
        args.append(f.status)
    if f.keyword:
        clauses.append("(function LIKE ? OR module LIKE ? OR job_id LIKE ? OR id LIKE ?)")
        args += [f"%{f.keyword}%"] * 4
    if f.since is not None:
        clauses.append("started >= ?")
        args.append(f.since)
    if f.until is not None:
        clauses.append("started < ?")
        args.append(f.until)
    return ("WHERE " + " AND ".join(clauses) if clauses else "", tuple(args))


def _run(row: tuple[Any, ...]) -> Run:
    (run_id, job_id, agent_id, function, module, version, started, ended, status, reason,
     message, exit_code, inputs, outputs, wall, cpu, rss, progress) = row  # fmt: skip
    return Run(
        run_id, job_id, agent_id, function, module, version, started, ended, status, reason,
        message, exit_code, json.loads(inputs), json.loads(outputs), wall, cpu, rss, progress,
    )  # fmt: skip
