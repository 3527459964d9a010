-- Moves of a tenant's files from one bucket to another (POST /v1/moves). The scheduled runs do
-- the work, a bounded number of blobs each; the registry's blobs rows say where each blob is, so
-- a move needs no list of its own: what is left is the tenant's blobs still in `from_bucket`.
-- At most one move per tenant runs at a time.
CREATE TABLE moves (
  id              TEXT PRIMARY KEY,
  tenant          TEXT NOT NULL,
  from_bucket     TEXT NOT NULL REFERENCES buckets(id),
  to_bucket       TEXT NOT NULL REFERENCES buckets(id),
  state           TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
  moved           INTEGER NOT NULL DEFAULT 0,
  moved_bytes     INTEGER NOT NULL DEFAULT 0,
  routes_switched INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER,
  CHECK (from_bucket <> to_bucket)
);
CREATE UNIQUE INDEX moves_one_running ON moves (tenant) WHERE state = 'running';
CREATE INDEX moves_state ON moves (state, created_at);

-- Blobs a move did not move: too large for one copy (they stay), or failed (retried until
-- `attempts` reaches locker-core::moves::MAX_ATTEMPTS). A blob moved later loses its row.
CREATE TABLE move_problems (
  move_id    TEXT NOT NULL REFERENCES moves(id),
  sha256     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  problem    TEXT NOT NULL CHECK (problem IN ('too_large', 'failed')),
  detail     TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (move_id, sha256)
);
