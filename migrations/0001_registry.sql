-- The registry. Every state change is one D1 batch (one transaction); concurrent changes use
-- conditional updates and check the change count. Times are Unix milliseconds.

-- Registered storage buckets. `id` is derived (see locker-core::bucket), never invented.
-- Credentials for S3-transport buckets live in Worker secrets named after the bucket, never here.
CREATE TABLE buckets (
  id           TEXT PRIMARY KEY CHECK (length(id) = 64),
  name         TEXT NOT NULL,
  provider     TEXT NOT NULL CHECK (provider IN ('r2', 's3')),
  transport    TEXT NOT NULL DEFAULT 'worker' CHECK (transport IN ('worker', 's3')),
  binding      TEXT,            -- R2 binding name, for the worker transport
  account_id   TEXT NOT NULL,
  jurisdiction TEXT NOT NULL DEFAULT 'default',
  endpoint     TEXT,            -- S3 endpoint, for the s3 transport
  active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at   INTEGER NOT NULL,
  UNIQUE (provider, account_id, jurisdiction, name)
);

-- Content-addressed bytes, per tenant (the key embeds the tenant; dedup never crosses tenants).
CREATE TABLE blobs (
  tenant       TEXT NOT NULL,
  sha256       TEXT NOT NULL CHECK (length(sha256) = 64),
  bucket_id    TEXT NOT NULL REFERENCES buckets(id),
  key          TEXT NOT NULL,
  size         INTEGER NOT NULL CHECK (size >= 0),
  content_type TEXT NOT NULL,
  verified     INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant, sha256)
);
CREATE INDEX blobs_bucket ON blobs (bucket_id);

-- Logical files: (tenant, namespace, path) -> blob. Many files may share one blob.
CREATE TABLE files (
  tenant       TEXT NOT NULL,
  namespace    TEXT NOT NULL,
  path         TEXT NOT NULL,
  sha256       TEXT NOT NULL,
  bucket_id    TEXT NOT NULL REFERENCES buckets(id),
  size         INTEGER NOT NULL CHECK (size >= 0),
  content_type TEXT NOT NULL,
  filename     TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant, namespace, path),
  FOREIGN KEY (tenant, sha256) REFERENCES blobs (tenant, sha256)
);
CREATE INDEX files_blob ON files (tenant, sha256);
CREATE INDEX files_bucket ON files (bucket_id);

-- Reservations made before bytes move: pending -> committed | aborted | expired.
CREATE TABLE uploads (
  id           TEXT PRIMARY KEY,
  tenant       TEXT NOT NULL,
  namespace    TEXT NOT NULL,
  path         TEXT NOT NULL,
  sha256       TEXT NOT NULL CHECK (length(sha256) = 64),
  size         INTEGER NOT NULL CHECK (size >= 0),
  content_type TEXT NOT NULL,
  filename     TEXT,
  bucket_id    TEXT NOT NULL REFERENCES buckets(id),
  key          TEXT NOT NULL,
  key_id       TEXT,            -- API key or upload token that made the reservation
  state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'committed', 'aborted', 'expired')),
  multipart_id TEXT,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  finished_at  INTEGER
);
CREATE INDEX uploads_state_expiry ON uploads (state, expires_at);
CREATE INDEX uploads_blob ON uploads (tenant, sha256, state);

-- One row per operation. Never holds a signature, a token or a key secret.
CREATE TABLE access_log (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant     TEXT,
  bucket_id  TEXT,
  operation  TEXT NOT NULL,
  sha256     TEXT,
  namespace  TEXT,
  path       TEXT,
  server     TEXT NOT NULL,
  key_id     TEXT,
  success    INTEGER NOT NULL CHECK (success IN (0, 1)),
  error      TEXT,
  bytes      INTEGER NOT NULL DEFAULT 0,
  ts         INTEGER NOT NULL
);
CREATE INDEX access_log_ts ON access_log (ts);
CREATE INDEX access_log_tenant_ts ON access_log (tenant, ts);
CREATE INDEX access_log_bucket_ts ON access_log (bucket_id, ts);
CREATE INDEX access_log_operation_ts ON access_log (operation, ts);

-- API keys: only a hash of the secret is stored.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  tenant      TEXT NOT NULL,
  scopes      TEXT NOT NULL,     -- JSON: {"namespaces": [...], "ops": [...]}
  secret_hash TEXT NOT NULL UNIQUE,
  label       TEXT,
  revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);
