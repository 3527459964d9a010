// The bucket registry with an s3 bucket (s3s-fs, an independent S3 server): registration under
// a derived id, routing of namespaces to two buckets at once, per-bucket stats, deactivation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { ADMIN_KEY, api, bytes, createKey, reserve, sha256hex, stats, tenantName } from "./support/api.mjs";
import { directBucket, reserveDirect, routedTenant } from "./support/direct.mjs";
import { S3_BUCKET } from "./support/s3.mjs";

const s3 = directBucket();

test("a bucket registers under its derived id; credentials stay out of the registry", async () => {
  assert.equal(s3.bucket.provider, "s3");
  assert.equal(s3.bucket.transport, "s3");
  assert.equal(s3.bucket.active, true);
  assert.match(s3.bucket.id, /^[0-9a-f]{64}$/);
  assert.equal(s3.bucket.id, sha256hex(Buffer.from(`s3:${s3.proxy.url}:${S3_BUCKET}`)));
  assert.deepEqual(s3.bucket.secrets, ["LOCKER_S3_E2E_DIRECT_ACCESS_KEY_ID", "LOCKER_S3_E2E_DIRECT_SECRET_ACCESS_KEY"]);
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(listed.status, 200);
  const row = listed.data.buckets.find((b) => b.id === s3.bucket.id);
  assert.equal(row.endpoint, s3.proxy.url);
  assert.ok(process.env.LOCKER_S3_SECRET_KEY, "xtask passes the S3 secret so its absence can be checked");
  assert.ok(!listed.text.includes(process.env.LOCKER_S3_SECRET_KEY));

  // Refusals, and nothing registered by them.
  const again = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: S3_BUCKET, provider: "s3", endpoint: s3.proxy.url },
  });
  assert.equal(again.status, 409);
  const noSecrets = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: "no-secrets", provider: "s3", endpoint: s3.proxy.url },
  });
  assert.equal(noSecrets.status, 400);
  assert.match(noSecrets.data.error.message, /LOCKER_S3_NO_SECRETS_ACCESS_KEY_ID/);
  const badEndpoint = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: "bad-endpoint", provider: "s3", endpoint: "ftp://x" },
  });
  assert.equal(badEndpoint.status, 400);
  const { key } = await createKey(tenantName("notadmin"));
  const tenantTry = await api("POST", "/v1/buckets", {
    key,
    json: { name: "mine", provider: "s3", endpoint: s3.proxy.url },
  });
  assert.equal(tenantTry.status, 403);
  const after = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(after.data.buckets.length, listed.data.buckets.length);
});

test("two buckets at once each get their namespaces; stats count per bucket with no orphans", async () => {
  const { key } = await routedTenant(s3.bucket, "twobuckets");
  const r2data = bytes(2000, "r2-side-");
  const s3data = bytes(3000, "s3-side-");
  const viaR2 = await reserve(key, {
    namespace: "corp",
    path: "r2.bin",
    sha256: sha256hex(r2data),
    size: r2data.length,
    content_type: "application/octet-stream",
  });
  assert.ok(viaR2.data.url.startsWith(`${BASE}/v1/data/`), viaR2.data.url);
  await fetch(viaR2.data.url, { method: "PUT", headers: viaR2.data.headers, body: r2data });
  assert.equal((await api("POST", `/v1/uploads/${viaR2.data.upload_id}/complete`, { key })).status, 200);
  const viaS3 = await reserveDirect(key, s3data);
  await fetch(viaS3.data.url, { method: "PUT", headers: viaS3.data.headers, body: s3data });
  assert.equal((await api("POST", `/v1/uploads/${viaS3.data.upload_id}/complete`, { key })).status, 200);

  const s = await stats(key);
  const count = (id) => s.buckets.find((b) => b.id === id);
  const routes = await api("GET", "/v1/routes", { key });
  assert.deepEqual(
    routes.data.routes.map((r) => [r.namespace, r.bucket_id]),
    [["direct", s3.bucket.id]],
  );
  assert.deepEqual([count(routes.data.default_bucket_id).files, count(s3.bucket.id).files], [1, 1]);
  assert.deepEqual(s.integrity, {
    routes_without_bucket: 0,
    files_without_bucket: 0,
    blobs_without_bucket: 0,
    files_without_verified_blob: 0,
  });
  const all = await stats(ADMIN_KEY);
  assert.deepEqual(Object.values(all.integrity), [0, 0, 0, 0]);
});

test("a deactivated bucket takes no new uploads; its files stay readable", async () => {
  const { key } = await routedTenant(s3.bucket, "inactive");
  const data = bytes(1500, "inactive-");
  const r = await reserveDirect(key, data);
  await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body: data });
  assert.equal((await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key })).status, 200);

  const tenantTry = await api("POST", `/v1/buckets/${s3.bucket.id}/deactivate`, { key });
  assert.equal(tenantTry.status, 403);
  const { default_bucket_id } = (await api("GET", "/v1/routes", { key })).data;
  const notDefault = await api("POST", `/v1/buckets/${default_bucket_id}/deactivate`, { key: ADMIN_KEY });
  assert.equal(notDefault.status, 409, notDefault.text);
  assert.equal(notDefault.data.error.code, "default_bucket");
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(listed.data.buckets.find((b) => b.id === default_bucket_id).active, true);
  const off = await api("POST", `/v1/buckets/${s3.bucket.id}/deactivate`, { key: ADMIN_KEY });
  assert.equal(off.status, 200, off.text);
  assert.equal(off.data.active, false);
  try {
    const refused = await reserveDirect(key, bytes(100), { path: "new.bin" });
    assert.equal(refused.status, 409);
    assert.equal(refused.data.error.code, "bucket_inactive");
    const meta = await api("GET", "/v1/files/direct/a/file.bin", { key });
    const got = await fetch(meta.data.url);
    assert.equal(sha256hex(Buffer.from(await got.arrayBuffer())), sha256hex(data));
  } finally {
    const on = await api("POST", `/v1/buckets/${s3.bucket.id}/activate`, { key: ADMIN_KEY });
    assert.equal(on.data.active, true);
  }
  assert.equal((await reserveDirect(key, bytes(100), { path: "new.bin" })).status, 201);
});
