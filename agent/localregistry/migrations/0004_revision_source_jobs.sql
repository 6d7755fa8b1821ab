-- Version 4: outputs are found by the job that made them (GET /api/v2/models?source_job_id=).
-- A revision records the job that uploaded it (`source_job_id` on a create, or on a new
-- revision with PUT /api/v2/models/{id} or /api/v2/artifacts/{id}); a resource's own column
-- already named the job that created it, and its first revision takes that job here.
ALTER TABLE revisions ADD COLUMN source_job_id TEXT;
UPDATE revisions SET source_job_id = (
    SELECT r.source_job_id FROM resources r WHERE r.file_id = revisions.file_id
) WHERE seq = 0;
CREATE INDEX revisions_source_job ON revisions(source_job_id) WHERE source_job_id IS NOT NULL;
