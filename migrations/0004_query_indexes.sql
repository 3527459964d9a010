-- Indexes for the queries the Worker runs per tenant, so that none of them reads a whole
-- table (a test runs EXPLAIN QUERY PLAN on the Worker's own statements against these
-- migrations). The keys of 0001 already serve the file lookups, the dedup lookup by
-- (tenant, sha256) and the reservation sweep by (state, expires_at).

-- The access log, newest first per tenant (`ORDER BY id DESC`, paged by `id < cursor`; `id`
-- is the rowid), and the count of its rows per (tenant, namespace) for GET /v1/stats of an
-- admin key limited to some namespaces.
CREATE INDEX access_log_tenant_id ON access_log (tenant, id);
CREATE INDEX access_log_tenant_namespace_id ON access_log (tenant, namespace, id);

-- GET /v1/stats: reservations per tenant and state (also per namespace), and files and blobs
-- per tenant and bucket.
CREATE INDEX uploads_tenant_state ON uploads (tenant, state);
CREATE INDEX uploads_tenant_namespace_state ON uploads (tenant, namespace, state);
CREATE INDEX files_tenant_bucket ON files (tenant, bucket_id);
CREATE INDEX blobs_tenant_bucket ON blobs (tenant, bucket_id);
