-- Buckets reached through the S3 API (the `s3` transport) need a signing region and a URL
-- style; and each tenant's namespaces can be routed to a registered bucket.
ALTER TABLE buckets ADD COLUMN region TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE buckets ADD COLUMN path_style INTEGER NOT NULL DEFAULT 1 CHECK (path_style IN (0, 1));

-- Which bucket receives a tenant's new uploads: per namespace, or '*' for the tenant's
-- default; without a row, the deployment's default bucket (the BLOBS binding).
CREATE TABLE routes (
  tenant     TEXT NOT NULL,
  namespace  TEXT NOT NULL,
  bucket_id  TEXT NOT NULL REFERENCES buckets(id),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, namespace)
);
