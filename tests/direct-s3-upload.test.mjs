// Uploads straight to an s3 bucket (s3s-fs, an independent S3 server) over plain HTTP: reserve,
// PUT to the presigned URL, complete, dedup, download, delete; the gateway's server-side PUT;
// the size limit of one PUT on each transport.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { ADMIN_KEY, api, bytes, logs, reserve, sha256hex, stats } from "./support/api.mjs";
import { directBucket, objectKey, reserveDirect, routedTenant } from "./support/direct.mjs";
import { S3_BUCKET, objectOnDisk } from "./support/s3.mjs";

const s3 = directBucket();

test("upload goes straight to the S3 server, completes, dedups, downloads and deletes", async () => {
  const { tenant, key } = await routedTenant(s3.bucket, "direct");
  const data = bytes(300 * 1024, "direct-");
  const r = await reserveDirect(key, data);
  assert.equal(r.status, 201, r.text);
  assert.ok(r.data.url.startsWith(`${s3.proxy.url}/${S3_BUCKET}/t/${tenant}/sha256/`), r.data.url);
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

  // The Worker never saw the bytes: no data-plane upload row, and the reservation names the s3.bucket.
  const rows = await logs(key);
  assert.deepEqual(
    rows.filter((l) => l.operation === "upload"),
    [],
  );
  assert.ok(
    rows.filter((l) => ["reserve", "complete"].includes(l.operation)).every((l) => l.bucket_id === s3.bucket.id),
  );

  // Dedup: answered from the registry, nothing to send.
  const again = await reserveDirect(key, data, { path: "b/copy.bin" });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.data.status, "deduplicated");

  // Download through a presigned GET, straight from the server, with the Worker's headers.
  const meta = await api("GET", "/v1/files/direct/a/file.bin", { key });
  assert.equal(meta.data.bucket_id, s3.bucket.id);
  assert.ok(meta.data.url.startsWith(s3.proxy.url), meta.data.url);
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
  assert.ok(viaGateway.headers.get("location").startsWith(s3.proxy.url));

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

test("the gateway's server-side PUT stores into an s3 bucket too, checked like any other upload", async () => {
  const { tenant, key } = await routedTenant(s3.bucket, "gateway3");
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

test("one PUT carries up to 100 MB through the Worker and up to 5 GB straight to storage", async () => {
  const { key } = await routedTenant(s3.bucket, "limits");
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
  assert.ok(direct.data.url.startsWith(s3.proxy.url), direct.data.url);
  const tooShort = await fetch(direct.data.url, { method: "PUT", headers: direct.data.headers, body: data });
  assert.ok(tooShort.status >= 400, `a body of another length is refused by the server (${tooShort.status})`);
  assert.equal((await api("DELETE", `/v1/uploads/${direct.data.upload_id}`, { key })).status, 200);
  assert.equal((await stats(key)).uploads.pending, before.uploads.pending);
});
