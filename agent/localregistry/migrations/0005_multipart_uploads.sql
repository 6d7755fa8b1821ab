-- Version 5: multipart uploads (POST/PUT /api/v2/tokens/multipart-upload, multipart.py).
-- An upload in progress and the parts it has acknowledged, so that a registry restarted
-- mid-upload still knows them; `part_size` is learnt from the first part that is not the
-- last, `touched` is the time of the last part (an upload idle past the TTL is swept).
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
