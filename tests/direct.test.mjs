// Direct-to-storage uploads (the s3 transport) against an independent S3 server (s3s-fs), and
// the bucket registry: registration, routing of namespaces, activation, stats.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser } from "./support/env.mjs";
import { ADMIN_KEY, api, bytes, createKey, logs, reserve, sha256hex, stats, tenantName } from "./support/api.mjs";
import { S3_BUCKET, corsProxy, objectOnDisk } from "./support/s3.mjs";
import { pick, recordRequests, rowIn, uploadPastExpiry, widgetPage } from "./support/widget.mjs";

let proxy;
let bucket;
let browser;

before(async () => {
  proxy = await corsProxy();
  const res = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: S3_BUCKET, provider: "s3", endpoint: proxy.url, region: "us-east-1" },
  });
  assert.equal(res.status, 201, res.text);
  bucket = res.data;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await proxy?.close();
});

/** A tenant whose namespace `direct` goes to the s3 bucket (and everything else to R2). */
async function routedTenant(label) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const route = await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket.id } });
  assert.equal(route.status, 200, route.text);
  return { tenant, key };
}

/** Reserves `data` at direct/a/file.bin unless `extra` says otherwise. */
function reserveDirect(key, data, extra = {}) {
  return reserve(key, { namespace: "direct", path: "a/file.bin", data, ...extra });
}

const objectKey = (tenant, data) => `t/${tenant}/sha256/${sha256hex(data)}`;

test("a bucket registers under its derived id; credentials stay out of the registry", async () => {
  assert.equal(bucket.provider, "s3");
  assert.equal(bucket.transport, "s3");
  assert.equal(bucket.active, true);
  assert.match(bucket.id, /^[0-9a-f]{64}$/);
  assert.equal(bucket.id, sha256hex(Buffer.from(`s3:${proxy.url}:${S3_BUCKET}`)));
  assert.deepEqual(bucket.secrets, ["LOCKER_S3_E2E_DIRECT_ACCESS_KEY_ID", "LOCKER_S3_E2E_DIRECT_SECRET_ACCESS_KEY"]);
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(listed.status, 200);
  const row = listed.data.buckets.find((b) => b.id === bucket.id);
  assert.equal(row.endpoint, proxy.url);
  assert.ok(process.env.LOCKER_S3_SECRET_KEY, "xtask passes the S3 secret so its absence can be checked");
  assert.ok(!listed.text.includes(process.env.LOCKER_S3_SECRET_KEY));

  // Refusals, and nothing registered by them.
  const again = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: S3_BUCKET, provider: "s3", endpoint: proxy.url },
  });
  assert.equal(again.status, 409);
  const noSecrets = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: "no-secrets", provider: "s3", endpoint: proxy.url },
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
    json: { name: "mine", provider: "s3", endpoint: proxy.url },
  });
  assert.equal(tenantTry.status, 403);
  const after = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(after.data.buckets.length, listed.data.buckets.length);
});

test("upload goes straight to the S3 server, completes, dedups, downloads and deletes", async () => {
  const { tenant, key } = await routedTenant("direct");
  const data = bytes(300 * 1024, "direct-");
  const r = await reserveDirect(key, data);
  assert.equal(r.status, 201, r.text);
  assert.ok(r.data.url.startsWith(`${proxy.url}/${S3_BUCKET}/t/${tenant}/sha256/`), r.data.url);
  assert.match(
    r.data.url,
    /X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-sha256/,
  );
  assert.equal(r.data.headers["x-amz-checksum-sha256"], Buffer.from(sha256hex(data), "hex").toString("base64"));

  const put = await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body: data });
  assert.equal(put.status, 200, await put.text());
  assert.ok(objectOnDisk(objectKey(tenant, data)));
  const done = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.data.ref, "locker://direct/a/file.bin");

  // The Worker never saw the bytes: no data-plane upload row, and the reservation names the bucket.
  const rows = await logs(key);
  assert.deepEqual(
    rows.filter((l) => l.operation === "upload"),
    [],
  );
  assert.ok(rows.filter((l) => ["reserve", "complete"].includes(l.operation)).every((l) => l.bucket_id === bucket.id));

  // Dedup: answered from the registry, nothing to send.
  const again = await reserveDirect(key, data, { path: "b/copy.bin" });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.data.status, "deduplicated");

  // Download through a presigned GET, straight from the server, with the Worker's headers.
  const meta = await api("GET", "/v1/files/direct/a/file.bin", { key });
  assert.equal(meta.data.bucket_id, bucket.id);
  assert.ok(meta.data.url.startsWith(proxy.url), meta.data.url);
  const got = await fetch(meta.data.url);
  assert.equal(got.status, 200);
  assert.match(got.headers.get("content-disposition"), /file\.bin/);
  assert.equal(sha256hex(Buffer.from(await got.arrayBuffer())), sha256hex(data));
  // The gateway's GET and the Worker's download route redirect there too.
  const viaGateway = await fetch(`${BASE}/api/files/direct/a/file.bin`, {
    headers: { authorization: `Bearer ${key}` },
    redirect: "manual",
  });
  assert.equal(viaGateway.status, 302);
  assert.ok(viaGateway.headers.get("location").startsWith(proxy.url));

  // Delete: the bytes stay while the copy uses them, then go.
  assert.equal((await api("DELETE", "/v1/files/direct/a/file.bin", { key })).status, 200);
  assert.ok(objectOnDisk(objectKey(tenant, data)));
  assert.equal((await api("DELETE", "/v1/files/direct/b/copy.bin", { key })).status, 200);
  assert.ok(!objectOnDisk(objectKey(tenant, data)));
  const s = await stats(key);
  assert.equal(s.files, 0);
  assert.equal(s.blobs, 0);
  // Nothing secret in the access log: no credential, no signature.
  const everything = await api("GET", "/v1/logs?limit=1000", { key: ADMIN_KEY });
  assert.ok(!everything.text.includes(process.env.LOCKER_S3_SECRET_KEY));
  assert.ok(!/X-Amz-Signature|sig=/.test(everything.text));
});

test("the S3 server refuses other bytes, another length, a tampered or an expired URL; nothing is committed", async () => {
  const { tenant, key } = await routedTenant("refuse3");
  const data = bytes(4096, "s3-refuse-");

  // Other bytes of the same length: the server refuses the checksum (and s3s-fs keeps the
  // bytes anyway), so complete must find out from the stored bytes and take them back.
  const wrong = await reserveDirect(key, data);
  const other = bytes(4096, "imposter-");
  const put1 = await fetch(wrong.data.url, { method: "PUT", headers: wrong.data.headers, body: other });
  assert.equal(put1.status, 400);
  assert.match(await put1.text(), /BadDigest/);
  const c1 = await api("POST", `/v1/uploads/${wrong.data.upload_id}/complete`, { key });
  assert.equal(c1.status, 422, c1.text);
  assert.ok(!objectOnDisk(objectKey(tenant, data)));

  // Another length: the signed content-length does not match.
  const short = await reserveDirect(key, data);
  const put2 = await fetch(short.data.url, { method: "PUT", headers: short.data.headers, body: data.subarray(1) });
  assert.equal(put2.status, 403);
  assert.equal((await api("POST", `/v1/uploads/${short.data.upload_id}/complete`, { key })).status, 409);

  // Tampered signature.
  const tampered = await reserveDirect(key, data);
  const url = tampered.data.url.replace(
    /X-Amz-Signature=([0-9a-f])/,
    (_, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
  );
  const put3 = await fetch(url, { method: "PUT", headers: tampered.data.headers, body: data });
  assert.equal(put3.status, 403);
  assert.match(await put3.text(), /SignatureDoesNotMatch/);

  // Expired.
  const late = await reserveDirect(key, data, { expires_in: 1 });
  await new Promise((r) => setTimeout(r, 2100));
  const put4 = await fetch(late.data.url, { method: "PUT", headers: late.data.headers, body: data });
  assert.equal(put4.status, 403);

  assert.ok(!objectOnDisk(objectKey(tenant, data)));
  const s = await stats(key);
  assert.equal(s.files, 0);
  assert.equal(s.blobs, 0);
  assert.equal(s.uploads.committed, 0);
});

test("the widget uploads straight to the S3 server and dedups there", async () => {
  const { page, errors, key, tenant } = await widgetPage(browser, "direct-widget", {});
  await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: bucket.id } });
  const requests = recordRequests(page);
  const data = bytes(256 * 1024, "widget-direct-");
  await pick(page, [{ name: "direct.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "direct.bin", "stored");
  const puts = requests.filter((r) => r.method === "PUT");
  assert.equal(puts.length, 1);
  assert.ok(puts[0].url.startsWith(proxy.url), puts[0].url);
  assert.equal(puts[0].bytes, data.length);
  assert.deepEqual(
    requests.filter((r) => r.url.includes("/v1/data/")),
    [],
  );
  assert.ok(objectOnDisk(objectKey(tenant, data)));
  const [result] = await page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, sha256hex(data));

  const before = requests.length;
  await pick(page, [{ name: "again.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "again.bin", "deduplicated");
  assert.deepEqual(
    requests.slice(before).filter((r) => r.method === "PUT"),
    [],
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test("an expired presigned URL is renewed with a fresh reservation, as on the worker transport", async () => {
  // Real expiry at the S3 server: URLs that live 3 s, the first PUT held until its URL is past
  // that, then sent on to s3s-fs, which answers 403 with its XML error.
  const { page, errors, key, tenant } = await widgetPage(browser, "direct-expiry", {});
  await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: bucket.id } });
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  const data = bytes(6000, "direct-late-");
  const outcome = await uploadPastExpiry(page, {
    pattern: `${proxy.url}/**`,
    token: minted.data.token,
    namespace: "demo",
    expiresIn: 3,
    data,
    name: "late.bin",
  });
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.equal(outcome.result.ref, "locker://demo/late.bin");
  assert.equal(outcome.puts.length, 2);
  // What the server really said: S3's words for an expired presigned URL.
  assert.equal(outcome.puts[0].status, 403);
  assert.match(outcome.puts[0].body, /<Code>AccessDenied<\/Code>/);
  assert.match(outcome.puts[0].body, /<Message>Request has expired<\/Message>/);
  assert.equal(outcome.puts[1].status, 200);
  assert.deepEqual(outcome.retries, [], "an expired URL is renewed, not retried as it is");
  assert.ok(objectOnDisk(objectKey(tenant, data)));
  assert.equal((await api("GET", "/v1/files/demo/late.bin", { key })).data.bucket_id, bucket.id);
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.deepEqual(s.uploads, { pending: 0, committed: 1, aborted: 1, expired: 0 });
  assert.deepEqual(errors, []);
  await page.close();
});

test("the gateway's server-side PUT stores into an s3 bucket too, checked like any other upload", async () => {
  const { tenant, key } = await routedTenant("gateway3");
  const gw = (path, body, headers = {}) =>
    fetch(`${BASE}/api/files/direct/${path}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream", ...headers },
      body,
      duplex: "half",
    });
  // Streamed (digest declared up front) and buffered (the Worker hashes it).
  const streamed = bytes(200 * 1024, "gw-stream-");
  const r1 = await gw("streamed.bin", streamed, { "x-locker-sha256": sha256hex(streamed) });
  assert.equal(r1.status, 201, await r1.text());
  assert.ok(objectOnDisk(objectKey(tenant, streamed)));
  const small = bytes(3000, "gw-small-");
  const r2 = await gw("small.bin", small);
  assert.equal(r2.status, 201, await r2.text());
  const again = await gw("again.bin", small);
  assert.equal(again.status, 200);
  assert.equal((await again.json()).deduplicated, true);
  const got = await fetch(`${BASE}/api/files/direct/small.bin`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(sha256hex(Buffer.from(await got.arrayBuffer())), sha256hex(small));

  // A declared digest the bytes do not have: refused, nothing kept.
  const liar = bytes(5000, "gw-liar-");
  const claimed = sha256hex(bytes(5000, "something-else-"));
  const r3 = await gw("liar.bin", liar, { "x-locker-sha256": claimed });
  assert.equal(r3.status, 400, await r3.text());
  assert.ok(!objectOnDisk(`t/${tenant}/sha256/${claimed}`));
  const s = await stats(key);
  assert.equal(s.files, 3);
  assert.equal(s.blobs, 2);
});

test("two buckets at once each get their namespaces; stats count per bucket with no orphans", async () => {
  const { key } = await routedTenant("twobuckets");
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
    [["direct", bucket.id]],
  );
  assert.deepEqual([count(routes.data.default_bucket_id).files, count(bucket.id).files], [1, 1]);
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
  const { key } = await routedTenant("inactive");
  const data = bytes(1500, "inactive-");
  const r = await reserveDirect(key, data);
  await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body: data });
  assert.equal((await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key })).status, 200);

  const tenantTry = await api("POST", `/v1/buckets/${bucket.id}/deactivate`, { key });
  assert.equal(tenantTry.status, 403);
  const { default_bucket_id } = (await api("GET", "/v1/routes", { key })).data;
  const notDefault = await api("POST", `/v1/buckets/${default_bucket_id}/deactivate`, { key: ADMIN_KEY });
  assert.equal(notDefault.status, 409, notDefault.text);
  assert.equal(notDefault.data.error.code, "default_bucket");
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(listed.data.buckets.find((b) => b.id === default_bucket_id).active, true);
  const off = await api("POST", `/v1/buckets/${bucket.id}/deactivate`, { key: ADMIN_KEY });
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
    const on = await api("POST", `/v1/buckets/${bucket.id}/activate`, { key: ADMIN_KEY });
    assert.equal(on.data.active, true);
  }
  assert.equal((await reserveDirect(key, bytes(100), { path: "new.bin" })).status, 201);
});

test("one PUT carries up to 100 MB through the Worker and up to 5 GB straight to storage", async () => {
  const { key } = await routedTenant("limits");
  const data = bytes(1000, "limits-");
  const before = await stats(key);
  // Namespace `plain` is not routed: the default R2 bucket, through the Worker's data plane.
  const viaWorker = await reserve(key, {
    namespace: "plain",
    path: "big.bin",
    sha256: sha256hex(data),
    size: 100_000_001,
    content_type: "application/octet-stream",
    multipart: false, // one PUT, not the parts the Worker's 64 MiB threshold would choose
  });
  assert.equal(viaWorker.status, 413, viaWorker.text);
  assert.equal(viaWorker.data.error.code, "too_large");
  assert.match(viaWorker.data.error.message, /100000000/);
  const overS3 = await reserveDirect(key, data, { size: 5_000_000_001, multipart: false });
  assert.equal(overS3.status, 413, overS3.text);
  assert.match(overS3.data.error.message, /5000000000/);
  assert.deepEqual((await stats(key)).uploads, before.uploads, "a refused reservation leaves no row");

  // The same 100 MB + 1 byte is one signed PUT to the s3 bucket, its length signed.
  const direct = await reserveDirect(key, data, { size: 100_000_001, multipart: false });
  assert.equal(direct.status, 201, direct.text);
  assert.ok(direct.data.url.startsWith(proxy.url), direct.data.url);
  const tooShort = await fetch(direct.data.url, { method: "PUT", headers: direct.data.headers, body: data });
  assert.ok(tooShort.status >= 400, `a body of another length is refused by the server (${tooShort.status})`);
  assert.equal((await api("DELETE", `/v1/uploads/${direct.data.upload_id}`, { key })).status, 200);
  assert.equal((await stats(key)).uploads.pending, before.uploads.pending);
});

test("complete and abort racing each other leave the registry and the storage agreeing", async () => {
  // The two orders are both fine; what must never happen is a file whose bytes were deleted,
  // or bytes kept for nothing. The delays move the abort through complete's verification.
  const { tenant, key } = await routedTenant("race");
  const seen = new Set();
  for (const delay of [0, 30, 120, 400, 3000]) {
    const data = bytes(24 * 1024 * 1024, `race-${delay}-`);
    const path = `race/${delay}.bin`;
    const r = await reserveDirect(key, data, { path });
    assert.equal(r.status, 201, r.text);
    assert.equal((await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body: data })).status, 200);
    const completing = api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
    await new Promise((resolve) => setTimeout(resolve, delay));
    const abort = await api("DELETE", `/v1/uploads/${r.data.upload_id}`, { key });
    const complete = await completing;
    const file = await api("GET", `/v1/files/direct/${path}`, { key });
    const stored = objectOnDisk(objectKey(tenant, data));
    const outcome = [complete.status, abort.status, file.status, stored];
    seen.add(`${outcome.join(" ")} (${complete.data?.error?.message ?? "completed"})`);
    assert.ok(
      [
        [200, 409, 200, true], // completed first: the abort is refused
        [409, 200, 404, false], // aborted first: nothing committed, the bytes removed
      ].some((ok) => ok.join(" ") === outcome.join(" ")),
      `complete ${complete.status} (${complete.data?.error?.code ?? "ok"}), abort ${abort.status}, file ${file.status}, bytes kept: ${stored}`,
    );
  }
  console.log(`  outcomes seen: ${[...seen].join(" | ")}`);
  const s = await stats(key);
  assert.deepEqual(Object.values(s.integrity), [0, 0, 0, 0]);
});
