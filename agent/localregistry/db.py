"""The registry's SQLite database: connection, schema version and migrations, transactions.

SQLite runs in WAL mode on the event-loop thread. Each handler's reads and writes are short
and synchronous, so a transaction is never interleaved with another coroutine: that, plus
guarded UPDATEs (`... WHERE status IN (...)`), is what makes a claim atomic.

A new database is made from `schema.sql` at SCHEMA_VERSION. An older one is brought there by
`migrations/NNNN_*.sql`, one transaction each, each recording its number as the version; a
newer one (written by a later release) is refused before anything is written to it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agent.localregistry.datadir import SetupRefused

_PACKAGE = resources.files("agent.localregistry")
_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class SchemaTooNew(SetupRefused):
    """The database was written by a newer release of istari-agent."""


@dataclass(frozen=True)
class Migration:
    """One step from `version - 1` to `version`: a script of SQL statements."""

    version: int
    name: str
    sql: str


def _migrations() -> list[Migration]:
    found = []
    for entry in _PACKAGE.joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


MIGRATIONS = _migrations()
SCHEMA_VERSION = MIGRATIONS[-1].version if MIGRATIONS else 1
SCHEMA = _PACKAGE.joinpath("schema.sql").read_text("utf-8")


def connect(path: Path) -> sqlite3.Connection:
    """Open the database at `path` (readable by its owner only), created at SCHEMA_VERSION
    or migrated to it. Raises SchemaTooNew, having changed nothing, for a newer one."""
    _private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, name: str) -> None:
    """Bring the database to SCHEMA_VERSION; `name` says which one, for messages."""
    if schema_version(conn, name) == SCHEMA_VERSION:
        return  # the usual start: no write lock taken
    for _ in range(SCHEMA_VERSION + 1):  # a creation, or one step per migration
        with transaction(conn) as c:
            done = _step(c, name)
        if done:
            return


def _step(conn: sqlite3.Connection, name: str) -> bool:
    """Create the schema or run the next migration (caller holds the transaction); whether
    the database is now at SCHEMA_VERSION."""
    # Read under the write lock: another process may have migrated since the first look.
    version = schema_version(conn, name)
    if version is None:
        run_script(conn, SCHEMA)
        _record(conn, SCHEMA_VERSION)
        return True
    if version > SCHEMA_VERSION:
        msg = (
            f"{name} was written by a newer release of istari-agent (registry schema version "
            f"{version}; this release reads versions up to {SCHEMA_VERSION}). Upgrade "
            "istari-agent to open it; nothing in it was changed."
        )
        raise SchemaTooNew(msg)
    if version == SCHEMA_VERSION:
        return True
    step = MIGRATIONS[version - 1]  # MIGRATIONS starts at version 2
    run_script(conn, step.sql)
    _record(conn, step.version)
    return step.version == SCHEMA_VERSION


def schema_version(conn: sqlite3.Connection, name: str) -> int | None:
    """The database's recorded schema version; None for a new, empty database."""
    meta = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    if conn.execute(meta).fetchone() is None:
        if conn.execute("SELECT 1 FROM sqlite_master").fetchone() is None:
            return None
        msg = f"{name} is not a local registry database (it records no schema version)"
        raise SetupRefused(msg)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    # Version-1 releases made `meta` first and recorded the version after the rest of the
    # schema, so a first start cut short in between left a version-1 database without it.
    return 1 if row is None else int(row["value"])


def _record(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(version),),
    )


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute a script's statements one by one, inside the caller's transaction
    (`executescript` would commit it first)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if any(x.strip() and not x.strip().startswith("--") for x in pending.splitlines()):
        msg = f"an SQL script ends inside a statement: {pending.strip()[:80]!r}"
        raise ValueError(msg)


def _private(path: Path) -> None:
    """Create the database 0600 before SQLite opens it, and make an older, laxer one 0600.

    It holds token hashes and stored credentials. SQLite creates the `-wal` and `-shm` files
    with the database file's mode, so they follow; any left by an older release are fixed too.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.chmod(0o600)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One immediate transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def reachable(conn: sqlite3.Connection) -> bool:
    """Whether the database answers a trivial query (the readiness check)."""
    try:
        conn.execute("SELECT 1").fetchone()
    except Exception:
        return False
    return True
