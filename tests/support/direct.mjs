// The s3 bucket of the direct-to-storage tests: s3s-fs behind a CORS proxy, registered with the
// Worker, and tenants whose namespace `direct` is routed to it.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, api, createKey, reserve, sha256hex, tenantName } from "./api.mjs";
import { launchBrowser } from "./env.mjs";
import { S3_BUCKET, corsProxy } from "./s3.mjs";

/**
 * Registers s3s-fs (behind a fresh CORS proxy) as an s3 bucket before the file's tests, and
 * stops the proxy after them. The bucket's id derives from the proxy's origin, so each test file
 * registers its own bucket and never sees another file's. `verify` names the bucket's
 * verification policy (`read_back`, `checksum`; left out: the default). Returns an object whose
 * `proxy`, `bucket` (the registration's answer) and, with `{ browser: true }`, `browser` are set
 * once the `before` hook has run.
 */
export function directBucket({ browser = false, verify } = {}) {
  const s3 = {};
  before(async () => {
    s3.proxy = await corsProxy();
    const res = await api("POST", "/v1/buckets", {
      key: ADMIN_KEY,
      json: { name: S3_BUCKET, provider: "s3", endpoint: s3.proxy.url, region: "us-east-1", verify },
    });
    assert.equal(res.status, 201, res.text);
    s3.bucket = res.data;
    if (browser) s3.browser = await launchBrowser();
  });
  after(async () => {
    await s3.browser?.close();
    await s3.proxy?.close();
  });
  return s3;
}

/** A tenant whose namespace `direct` goes to `bucket` (and everything else to R2). */
export async function routedTenant(bucket, label) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const route = await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket.id } });
  assert.equal(route.status, 200, route.text);
  return { tenant, key };
}

/** Reserves `data` at direct/a/file.bin unless `extra` says otherwise. */
export function reserveDirect(key, data, extra = {}) {
  return reserve(key, { namespace: "direct", path: "a/file.bin", data, ...extra });
}

/** The object key a tenant's blob of `data` is stored under. */
export const objectKey = (tenant, data) => `t/${tenant}/sha256/${sha256hex(data)}`;
