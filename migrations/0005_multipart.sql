-- Uploads in parts (multipart), through the Worker into R2 or straight to S3 storage.
--
-- `uploads` gains the plan (part_size, part_count; NULL for an upload in one request; the
-- storage's own upload id was already in multipart_id), completing_at (a complete in progress
-- holds it, so two completes never run at once and no part is accepted meanwhile) and the
-- state `verifying` (a completed object too large to check in one request, checked by the
-- scheduled step). SQLite cannot change a CHECK constraint in place: the table is rebuilt with
-- the same rows and indexes. No table references `uploads` before this migration.
CREATE TABLE uploads_new (
  id            TEXT PRIMARY KEY,
  tenant        TEXT NOT NULL,
  namespace     TEXT NOT NULL,
  path          TEXT NOT NULL,
  sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
  size          INTEGER NOT NULL CHECK (size >= 0),
  content_type  TEXT NOT NULL,
  filename      TEXT,
  bucket_id     TEXT NOT NULL REFERENCES buckets(id),
  key           TEXT NOT NULL,
  key_id        TEXT,
  state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'committed', 'aborted', 'expired', 'verifying')),
  multipart_id  TEXT,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  part_size     INTEGER CHECK (part_size IS NULL OR part_size >= 5242880),
  part_count    INTEGER CHECK (part_count IS NULL OR part_count BETWEEN 1 AND 10000),
  completing_at INTEGER
);
INSERT INTO uploads_new (id, tenant, namespace, path, sha256, size, content_type, filename,
                         bucket_id, key, key_id, state, multipart_id, created_at, expires_at,
                         finished_at)
  SELECT id, tenant, namespace, path, sha256, size, content_type, filename, bucket_id, key,
         key_id, state, multipart_id, created_at, expires_at, finished_at FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_new RENAME TO uploads;
CREATE INDEX uploads_state_expiry ON uploads (state, expires_at);
CREATE INDEX uploads_blob ON uploads (tenant, sha256, state);
CREATE INDEX uploads_tenant_state ON uploads (tenant, state);
CREATE INDEX uploads_tenant_namespace_state ON uploads (tenant, namespace, state);

-- One row per part whose URL was given: its declared digest and length (what the data plane
-- and storage check the bytes against), and, once stored, when and storage's ETag. Rows go
-- with their upload's end (committed, aborted or expired): parts live only while pending.
CREATE TABLE upload_parts (
  upload_id TEXT NOT NULL REFERENCES uploads(id),
  number    INTEGER NOT NULL CHECK (number BETWEEN 1 AND 10000),
  size      INTEGER NOT NULL CHECK (size >= 1),
  sha256    TEXT NOT NULL CHECK (length(sha256) = 64),
  etag      TEXT,
  stored_at INTEGER,
  PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
