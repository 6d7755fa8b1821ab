"""Run records: one durable record per job run, kept in the state path (`runs.sqlite3`, 0600).

A record holds what people ask afterwards: which job and function ran where, each phase as a
step with its start and end, the outcome, its message and exit code, the tool's wall time,
the inputs (names, sizes, shas; never a credential's content) and the outputs with their
artifact ids. Writing a record never fails a job: a full disk is logged and the job goes on.
Old records go by age and by count (`prune`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

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
"""


@dataclass(frozen=True)
class Step:
    phase: str
    started: float
    ended: float | None


@dataclass(frozen=True)
class Run:
    """One job run as recorded."""

    id: str
    job_id: str
    agent_id: str
    function: str
    module: str
    module_version: str
    started: float
    ended: float | None
    status: str  # the job's last phase while it runs; its final status after
    reason: str | None
    message: str | None
    exit_code: int | None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float | None = None  # the tool's wall time
    cpu_s: float | None = None  # its CPU time (user + system), with what it waited for
    peak_rss_kb: int | None = None  # its largest resident set
    steps: list[Step] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class RunRecords:
    """The run records of one state path."""

    def __init__(self, path: Path) -> None:
        self.logs = path.parent / "run-logs"  # <run id>.log, 0600
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._conn.execute(sql, args)
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
        self._write("UPDATE steps SET ended = ? WHERE run_id = ? AND ended IS NULL", (now, run_id))
        self._write(
            "INSERT INTO steps(run_id, seq, phase, started) VALUES "
            "(?, (SELECT COUNT(*) FROM steps WHERE run_id = ?), ?, ?)",
            (run_id, run_id, phase, now),
        )
        self._write("UPDATE runs SET status = ? WHERE id = ?", (phase, run_id))

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
        self._write("UPDATE steps SET ended = ? WHERE run_id = ? AND ended IS NULL", (now, run_id))
        self._write(
            "UPDATE runs SET ended = ?, status = ?, reason = ?, message = ?, exit_code = ? "
            "WHERE id = ?",
            (now, status, reason, message, exit_code, run_id),
        )

    # -- read by the CLI and the HTTP API -----------------------------------------------------

    def list(self, *, limit: int = 50, status: str | None = None) -> list[Run]:
        """The most recent runs first (without their steps)."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self._conn.execute(
            f"SELECT * FROM runs {where} ORDER BY started DESC, rowid DESC LIMIT ?",  # noqa: S608
            (*args, limit),
        ).fetchall()
        return [_run(row) for row in rows]

    def get(self, run_id: str) -> Run | None:
        """One run with its steps; a unique prefix of its id (or its job's id) will do."""
        rows = self._conn.execute(
            "SELECT * FROM runs WHERE id LIKE ? OR job_id LIKE ? ORDER BY started DESC, rowid DESC",
            (run_id + "%", run_id + "%"),
        ).fetchall()
        if not rows:
            return None
        found = _run(rows[0])
        steps = self._conn.execute(
            "SELECT phase, started, ended FROM steps WHERE run_id = ? ORDER BY seq", (found.id,)
        ).fetchall()
        return Run(**{**found.__dict__, "steps": [Step(*s) for s in steps]})

    def keep_log(self, run_id: str, log_file: Path) -> None:
        """Keep (the end of) the run's log with its record."""
        try:
            self.logs.mkdir(mode=0o700, exist_ok=True)
            with log_file.open("rb") as src:
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


def _run(row: tuple[Any, ...]) -> Run:
    (run_id, job_id, agent_id, function, module, version, started, ended, status, reason,
     message, exit_code, inputs, outputs, wall, cpu, rss) = row  # fmt: skip
    return Run(
        run_id, job_id, agent_id, function, module, version, started, ended, status, reason,
        message, exit_code, json.loads(inputs), json.loads(outputs), wall, cpu, rss,
    )  # fmt: skip


def describe_inputs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """What a record keeps of the tool's inputs: names and types, files' sizes and shas.

    A credential (auth_info) is recorded by name and type only, a parameter by its JSON size.
    """
    described: list[dict[str, Any]] = []
    for name, item in document.items():
        kind, value = item.get("type"), item.get("value")
        entry: dict[str, Any] = {"name": name, "type": kind}
        if kind in ("user_model", "user_link") and isinstance(value, str):
            path = Path(value)
            if path.is_file():
                entry |= {"file": path.name, "size": path.stat().st_size,
                          "sha256": _sha256(path)}  # fmt: skip
        elif kind == "parameter":
            entry["size"] = len(json.dumps(value))
        described.append(entry)
    return described


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def steps_csv(run: Run) -> str:
    """The steps as CSV text with a header row (pure)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phase", "started", "ended", "seconds"])
    for s in run.steps:
        took = f"{s.ended - s.started:.3f}" if s.ended else ""
        writer.writerow([s.phase, _iso(s.started), _iso(s.ended) if s.ended else "", took])
    return out.getvalue()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
