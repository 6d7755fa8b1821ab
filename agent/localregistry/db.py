"""The registry's SQLite database: schema, connection, and transactions.

SQLite runs in WAL mode on the event-loop thread. Each handler's reads and writes are short
and synchronous, so a transaction is never interleaved with another coroutine: that, plus
guarded UPDATEs (`... WHERE status IN (...)`), is what makes a claim atomic.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.localregistry import credentials

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
-- Verified blobs only (blobs.py). A NULL salt is an unchecked blob of an older release;
-- the blob store makes those candidates when it opens.
CREATE TABLE IF NOT EXISTS blobs (
    sha TEXT PRIMARY KEY, size INTEGER NOT NULL, created TEXT NOT NULL, salt TEXT
);
-- Uploads not yet checked against their address: any number per sha, one promoted.
CREATE TABLE IF NOT EXISTS blob_candidates (
    id TEXT PRIMARY KEY, sha TEXT NOT NULL, size INTEGER NOT NULL, digest TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_candidates_sha ON blob_candidates(sha, created);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, resource_id TEXT, resource_type TEXT,
    created_by_id TEXT
);
CREATE TABLE IF NOT EXISTS revisions (
    id TEXT PRIMARY KEY, file_id TEXT NOT NULL REFERENCES files(id), seq INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS revisions_file ON revisions(file_id, seq);
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created TEXT NOT NULL,
    file_id TEXT NOT NULL REFERENCES files(id), parent_id TEXT, source_job_id TEXT,
    created_by_id TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(kind, parent_id, created);
CREATE TABLE IF NOT EXISTS modules (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS module_versions (
    id TEXT PRIMARY KEY, module_id TEXT NOT NULL REFERENCES modules(id),
    module_name TEXT NOT NULL, module_version TEXT NOT NULL, created TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (module_name, module_version)
);
CREATE TABLE IF NOT EXISTS functions (
    id TEXT PRIMARY KEY, module_version_id TEXT NOT NULL REFERENCES module_versions(id),
    name TEXT NOT NULL, module_name TEXT NOT NULL, module_version TEXT NOT NULL,
    tool_versions TEXT NOT NULL, operating_systems TEXT NOT NULL, created TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS functions_name ON functions(name, module_name);
CREATE TABLE IF NOT EXISTS function_schemas (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT,
    host_os TEXT, capabilities TEXT NOT NULL DEFAULT '[]', status TEXT,
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agent_history (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL REFERENCES agents(id), kind TEXT NOT NULL,
    created TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_history_kind ON agent_history(agent_id, kind, created);
CREATE TABLE IF NOT EXISTS agent_modules (
    agent_id TEXT NOT NULL REFERENCES agents(id), module_name TEXT NOT NULL,
    module_version TEXT NOT NULL, PRIMARY KEY (agent_id, module_name, module_version)
);
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    description TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pool_members (
    id TEXT PRIMARY KEY, pool_id TEXT NOT NULL REFERENCES pools(id),
    agent_id TEXT NOT NULL REFERENCES agents(id), created TEXT NOT NULL, created_by_id TEXT,
    UNIQUE (pool_id, agent_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT,
    model_id TEXT NOT NULL, file_id TEXT NOT NULL REFERENCES files(id),
    function_id TEXT NOT NULL REFERENCES functions(id),
    function_name TEXT NOT NULL, module_name TEXT NOT NULL,
    tool_version TEXT, operating_system TEXT,
    assigned_agent_id TEXT, assigned_agent_pool_id TEXT, creator_agent_id TEXT,
    status TEXT NOT NULL, claimed_by TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created);
CREATE INDEX IF NOT EXISTS jobs_model ON jobs(model_id, created);
CREATE TABLE IF NOT EXISTS job_status (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), seq INTEGER NOT NULL,
    created TEXT NOT NULL, name TEXT NOT NULL, message TEXT, agent_id TEXT, created_by_id TEXT
);
CREATE INDEX IF NOT EXISTS job_status_job ON job_status(job_id, seq);
CREATE TABLE IF NOT EXISTS systems (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    description TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS workflow_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    system_id TEXT NOT NULL REFERENCES systems(id), title TEXT, status TEXT NOT NULL,
    workflow_type TEXT NOT NULL, configuration_id TEXT, branch_id TEXT, created TEXT NOT NULL,
    created_by_id TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS workflow_entries_system ON workflow_entries(system_id, seq);
CREATE TABLE IF NOT EXISTS workflow_outputs (
    id TEXT PRIMARY KEY, system_id TEXT NOT NULL REFERENCES systems(id),
    file_id TEXT NOT NULL REFERENCES files(id), revision_id TEXT NOT NULL,
    size INTEGER NOT NULL, created TEXT NOT NULL, created_by_id TEXT,
    entry_id TEXT REFERENCES workflow_entries(id), position INTEGER
);
CREATE INDEX IF NOT EXISTS workflow_outputs_entry ON workflow_outputs(entry_id, position);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create or migrate) the database at `path`, readable by its owner only."""
    _private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    conn.executescript(credentials.SCHEMA)
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
    return conn


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
