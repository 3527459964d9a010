-- The reconciler (part of every scheduled run). Deletions of stored bytes that failed are kept
-- here and retried, instead of only being logged; each is retried only while nothing claims the
-- bytes again (keys are content-addressed: a new upload of the same bytes reuses the key).
CREATE TABLE pending_deletes (
  bucket_id  TEXT NOT NULL,
  key        TEXT NOT NULL,
  tenant     TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  next_at    INTEGER NOT NULL,
  PRIMARY KEY (bucket_id, key)
);
CREATE INDEX pending_deletes_next ON pending_deletes (next_at);

-- Blobs whose object is missing or not of the blob's size, as the last check found them; a
-- later check that finds the object right removes the row. Reported in GET /v1/stats.
CREATE TABLE blob_problems (
  tenant    TEXT NOT NULL,
  sha256    TEXT NOT NULL,
  bucket_id TEXT NOT NULL,
  problem   TEXT NOT NULL CHECK (problem IN ('missing', 'wrong_size')),
  found_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant, sha256)
);

-- Where the reconciler's bounded passes go on from in the next run: the last blob rowid checked,
-- the last object key looked at under t/.
CREATE TABLE reconcile_cursors (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
