-- The local registry's schema at its current version (db.SCHEMA_VERSION). A new database is
-- made from this file; an older one is brought here by migrations/NNNN_*.sql, in order.
-- Changing it means adding a migration too (docs/local-registry.md, "Schema and migrations").

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
-- Verified blobs only (blobs.py). A NULL salt is an unchecked blob of an older release;
-- the blob store makes those candidates when it opens.
CREATE TABLE blobs (
    sha TEXT PRIMARY KEY, size INTEGER NOT NULL, created TEXT NOT NULL, salt TEXT
);
-- Uploads not yet checked against their address: any number per sha, one promoted.
CREATE TABLE blob_candidates (
    id TEXT PRIMARY KEY, sha TEXT NOT NULL, size INTEGER NOT NULL, digest TEXT,
    created TEXT NOT NULL
);
CREATE INDEX blob_candidates_sha ON blob_candidates(sha, created);
-- Multipart uploads in progress and their acknowledged parts (migration 0005, multipart.py).
CREATE TABLE multipart_uploads (
    id TEXT PRIMARY KEY, sha TEXT NOT NULL, num_parts INTEGER NOT NULL, part_size INTEGER,
    created TEXT NOT NULL, touched TEXT NOT NULL
);
CREATE INDEX multipart_uploads_sha ON multipart_uploads(sha);
CREATE TABLE multipart_parts (
    upload_id TEXT NOT NULL REFERENCES multipart_uploads(id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE files (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, resource_id TEXT, resource_type TEXT,
    created_by_id TEXT
);
-- source_job_id: the job that uploaded the revision as its output (migration 0004).
CREATE TABLE revisions (
    id TEXT PRIMARY KEY, file_id TEXT NOT NULL REFERENCES files(id), seq INTEGER NOT NULL,
    doc TEXT NOT NULL, source_job_id TEXT
);
CREATE INDEX revisions_file ON revisions(file_id, seq);
CREATE INDEX revisions_source_job ON revisions(source_job_id) WHERE source_job_id IS NOT NULL;
CREATE TABLE resources (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created TEXT NOT NULL,
    file_id TEXT NOT NULL REFERENCES files(id), parent_id TEXT, source_job_id TEXT,
    created_by_id TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX resources_parent ON resources(kind, parent_id, created);
CREATE TABLE modules (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE TABLE module_versions (
    id TEXT PRIMARY KEY, module_id TEXT NOT NULL REFERENCES modules(id),
    module_name TEXT NOT NULL, module_version TEXT NOT NULL, created TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (module_name, module_version)
);
CREATE TABLE functions (
    id TEXT PRIMARY KEY, module_version_id TEXT NOT NULL REFERENCES module_versions(id),
    name TEXT NOT NULL, module_name TEXT NOT NULL, module_version TEXT NOT NULL,
    tool_versions TEXT NOT NULL, operating_systems TEXT NOT NULL, created TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX functions_name ON functions(name, module_name);
CREATE TABLE function_schemas (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
-- status and display_name repeat the last entry of their history (agent_history), so that
-- a page of jobs names each job's agent with a join (migration 0002).
CREATE TABLE agents (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT,
    host_os TEXT, capabilities TEXT NOT NULL DEFAULT '[]', status TEXT,
    archived INTEGER NOT NULL DEFAULT 0, display_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE agent_history (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL REFERENCES agents(id), kind TEXT NOT NULL,
    created TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX agent_history_kind ON agent_history(agent_id, kind, created);
CREATE TABLE agent_modules (
    agent_id TEXT NOT NULL REFERENCES agents(id), module_name TEXT NOT NULL,
    module_version TEXT NOT NULL, PRIMARY KEY (agent_id, module_name, module_version)
);
CREATE TABLE pools (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    description TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE pool_members (
    id TEXT PRIMARY KEY, pool_id TEXT NOT NULL REFERENCES pools(id),
    agent_id TEXT NOT NULL REFERENCES agents(id), created TEXT NOT NULL, created_by_id TEXT,
    UNIQUE (pool_id, agent_id)
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT,
    model_id TEXT NOT NULL, file_id TEXT NOT NULL REFERENCES files(id),
    function_id TEXT NOT NULL REFERENCES functions(id),
    function_name TEXT NOT NULL, module_name TEXT NOT NULL,
    tool_version TEXT, operating_system TEXT,
    assigned_agent_id TEXT, assigned_agent_pool_id TEXT, creator_agent_id TEXT,
    status TEXT NOT NULL, claimed_by TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs(status, created);
CREATE INDEX jobs_model ON jobs(model_id, created);
CREATE TABLE job_status (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), seq INTEGER NOT NULL,
    created TEXT NOT NULL, name TEXT NOT NULL, message TEXT, agent_id TEXT, created_by_id TEXT
);
CREATE INDEX job_status_job ON job_status(job_id, seq);
-- Stored credentials (credentials.py): secrets, bound to jobs by input name.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    function_auth_type TEXT NOT NULL, secret BLOB NOT NULL, expiration TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE job_credentials (
    job_id TEXT NOT NULL REFERENCES jobs(id), input_name TEXT NOT NULL,
    credential_id TEXT NOT NULL REFERENCES credentials(id), PRIMARY KEY (job_id, input_name)
);
CREATE TABLE systems (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, created_by_id TEXT, name TEXT NOT NULL,
    description TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE workflow_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    system_id TEXT NOT NULL REFERENCES systems(id), title TEXT, status TEXT NOT NULL,
    workflow_type TEXT NOT NULL, configuration_id TEXT, branch_id TEXT, created TEXT NOT NULL,
    created_by_id TEXT, archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_entries_system ON workflow_entries(system_id, seq);
CREATE TABLE workflow_outputs (
    id TEXT PRIMARY KEY, system_id TEXT NOT NULL REFERENCES systems(id),
    file_id TEXT NOT NULL REFERENCES files(id), revision_id TEXT NOT NULL,
    size INTEGER NOT NULL, created TEXT NOT NULL, created_by_id TEXT,
    entry_id TEXT REFERENCES workflow_entries(id), position INTEGER
);
CREATE INDEX workflow_outputs_entry ON workflow_outputs(entry_id, position);
-- Identity-service mode (migration 0003): agents' ES384 public keys. `expires` is in epoch
-- seconds; a key past it gets no access token, and its tokens stop working.
CREATE TABLE identity_keys (
    client_id TEXT NOT NULL, key_id TEXT NOT NULL, user_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL, key_name TEXT NOT NULL, display_name TEXT NOT NULL,
    expires INTEGER NOT NULL, created TEXT NOT NULL, created_by_id TEXT,
    PRIMARY KEY (client_id, key_id)
);
