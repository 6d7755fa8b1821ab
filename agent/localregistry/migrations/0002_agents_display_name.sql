-- Version 2: a page of jobs names the agent holding each job with a join.
--
-- The version-1 releases grew their schema in place (every start ran it with IF NOT EXISTS),
-- so a database an early one made may lack the tables added later within version 1. They
-- come first, as the last version-1 release made them.
CREATE TABLE IF NOT EXISTS blob_candidates (
    id TEXT PRIMARY KEY, sha TEXT NOT NULL, size INTEGER NOT NULL, digest TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS blob_candidates_sha ON blob_candidates(sha, created);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    function_auth_type TEXT NOT NULL, secret BLOB NOT NULL, expiration TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_credentials (
    job_id TEXT NOT NULL REFERENCES jobs(id), input_name TEXT NOT NULL,
    credential_id TEXT NOT NULL REFERENCES credentials(id), PRIMARY KEY (job_id, input_name)
);
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

-- A job answers with the display name of the agent holding it. That name was the last
-- display_name entry of the agent's history, looked up once per job of a page; the agent's
-- row now carries it, as it carries its status, filled in here from that history.
ALTER TABLE agents ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
UPDATE agents SET display_name = COALESCE((
    SELECT json_extract(h.doc, '$.display_name') FROM agent_history h
    WHERE h.agent_id = agents.id AND h.kind = 'display_name'
    ORDER BY h.rowid DESC LIMIT 1
), '');
