// Empty files (0 bytes: an empty `.gitkeep`, a blank CSV) are normal files: they upload,
// dedup, download (200, content-length 0; any Range is 416) and delete, through both
// transports (worker: the R2 binding; s3: straight to s3s-fs) and through the gateway's PUT.
// Declarations that cannot describe 0 bytes are refused before anything is stored.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { api, createKey, logs, reserve, sha256hex, stats, stored, tenantName } from "./support/api.mjs";
import { S3_URL, objectOnDisk, registerS3Bucket } from "./support/s3.mjs";

const EMPTY = Buffer.alloc(0);
const EMPTY_SHA = sha256hex(EMPTY);
assert.equal(EMPTY_SHA, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

let s3;
before(async () => {
  // Registered at s3s-fs itself (Node needs no CORS), so the Worker talks to it directly.
  s3 = await registerS3Bucket();
});

/** A fresh tenant; with `transport: "s3"` its namespace `empty` goes to s3s-fs. */
async function tenantFor(transport) {
  const tenant = tenantName(`empty-${transport}`);
  const { key } = await createKey(tenant);
  if (transport === "s3") {
    const route = await api("PUT", "/v1/routes/empty", { key, json: { bucket_id: s3.id } });
    assert.equal(route.status, 200, route.text);
  }
  return { tenant, key };
}

const objectKey = (tenant) => `t/${tenant}/sha256/${EMPTY_SHA}`;

/** Whether the empty object is in the bucket of `transport` (R2 objects are counted by stats). */
async function objectExists(transport, tenant, key) {
  if (transport === "s3") return objectOnDisk(objectKey(tenant));
  return (await stats(key)).objects === 1;
}

function reserveEmpty(key, path, contentType = "application/octet-stream", extra = {}) {
  return reserve(key, { namespace: "empty", path, sha256: EMPTY_SHA, size: 0, content_type: contentType, ...extra });
}

/** GETs a download URL as a browser would (following a redirect to storage). */
async function download(url, headers = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

for (const transport of ["worker", "s3"]) {
  test(`${transport}: an empty file uploads, dedups, downloads and deletes`, async () => {
    const { tenant, key } = await tenantFor(transport);
    const r = await reserveEmpty(key, "keep/.gitkeep");
    assert.equal(r.status, 201, r.text);
    assert.equal(r.data.status, "upload");
    if (transport === "s3") assert.ok(r.data.url.startsWith(S3_URL), r.data.url);

    // No body at all (the Worker sees a null body, as from curl's empty --data-binary), with
    // the Content-Length of 0 bytes.
    const put = await fetch(r.data.url, { method: "PUT", headers: { ...r.data.headers, "content-length": "0" } });
    const putText = await put.text();
    if (transport === "worker") {
      assert.equal(put.status, 201, putText);
      assert.equal(JSON.parse(putText).status, "stored");
      // A second PUT of the same 0 bytes, as a body this time, finds them there.
      const again = await api("PUT", r.data.url, { body: EMPTY, headers: r.data.headers });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.data.status, "exists");
    } else {
      assert.equal(put.status, 200, putText);
    }
    assert.ok(await objectExists(transport, tenant, key));

    const done = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.data.ref, "locker://empty/keep/.gitkeep");
    assert.equal(done.data.size, 0);
    assert.equal(done.data.sha256, EMPTY_SHA);
    // Completing again answers the same.
    assert.equal((await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key })).status, 200);

    // The same 0 bytes as a blank CSV: deduplicated, nothing to send.
    const again = await reserveEmpty(key, "data/blank.csv", "text/csv");
    assert.equal(again.status, 200, again.text);
    assert.equal(again.data.status, "deduplicated");
    let s = await stats(key);
    assert.equal(s.files, 2);
    assert.equal(s.blobs, 1);
    assert.equal(s.uploads.committed, 1);
    assert.equal(s.uploads.pending, 0);

    // Download: 200 with no bytes, and any Range of nothing is unsatisfiable.
    const meta = await api("GET", "/v1/files/empty/data/blank.csv", { key });
    assert.equal(meta.status, 200, meta.text);
    assert.equal(meta.data.size, 0);
    assert.equal(meta.data.sha256, EMPTY_SHA);
    const got = await download(meta.data.url);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("content-length"), "0");
    assert.equal(got.body.length, 0);
    // (s3s-fs answers a suffix range of an empty object with a 500 of its own, so the s3
    // transport, served by storage itself, is asked only the plain ranges.)
    const ranges = transport === "worker" ? ["bytes=0-", "bytes=0-0", "bytes=-1"] : ["bytes=0-", "bytes=0-0"];
    for (const range of ranges) {
      const partial = await download(meta.data.url, { range });
      assert.equal(partial.status, 416, `${range}: ${partial.body}`);
    }
    // The gateway's GET: the bytes themselves (worker), or a redirect to storage (s3).
    const viaGateway = await fetch(`${BASE}/api/files/empty/keep/.gitkeep`, {
      headers: { authorization: `Bearer ${key}` },
      redirect: "manual",
    });
    if (transport === "worker") {
      assert.equal(viaGateway.status, 200);
      assert.equal(viaGateway.headers.get("content-length"), "0");
      assert.equal((await viaGateway.arrayBuffer()).byteLength, 0);
    } else {
      assert.equal(viaGateway.status, 302);
      assert.ok(viaGateway.headers.get("location").startsWith(S3_URL));
    }

    // Delete: the bytes stay while the other file uses them, then go.
    const first = await api("DELETE", "/v1/files/empty/keep/.gitkeep", { key });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.data.bytes_deleted, false);
    assert.ok(await objectExists(transport, tenant, key));
    const last = await api("DELETE", "/v1/files/empty/data/blank.csv", { key });
    assert.equal(last.status, 200, last.text);
    assert.equal(last.data.bytes_deleted, true);
    s = await stats(key);
    assert.equal(s.files, 0);
    assert.equal(s.blobs, 0);
    assert.ok(!(await objectExists(transport, tenant, key)));
    assert.deepEqual(Object.values(s.integrity), [0, 0, 0, 0]);
    // Nothing failed but the unsatisfiable ranges the Worker served itself.
    const failed = (await logs(key)).filter((l) => l.success === 0);
    assert.ok(
      failed.every((l) => l.error.startsWith("416")),
      JSON.stringify(failed),
    );
  });

  test(`${transport}: the gateway's PUT stores an empty body, with or without X-Locker-Sha256`, async () => {
    const { tenant, key } = await tenantFor(transport);
    const put = await api("PUT", "/api/files/empty/g/blank.csv", {
      key,
      body: EMPTY,
      headers: { "content-type": "text/csv" },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.data.ref, "locker://empty/g/blank.csv");
    assert.equal(put.data.sha256, EMPTY_SHA);
    assert.equal(put.data.size_bytes, 0);
    assert.ok(await objectExists(transport, tenant, key));
    const got = await download(put.data.url);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("content-length"), "0");
    assert.equal(got.body.length, 0);
    assert.equal((await download(put.data.url, { range: "bytes=0-" })).status, 416);

    // Streamed with a declared digest: the same bytes, deduplicated.
    const again = await api("PUT", "/api/files/empty/g/.gitkeep", {
      key,
      body: EMPTY,
      headers: { "content-type": "application/octet-stream", "x-locker-sha256": EMPTY_SHA },
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.data.deduplicated, true);
    assert.equal(again.data.existing_ref, "locker://empty/g/blank.csv");

    // A first upload with a declared digest goes the streaming way (another tenant: no dedup).
    const other = await tenantFor(transport);
    const streamed = await api("PUT", "/api/files/empty/s/.gitkeep", {
      key: other.key,
      body: EMPTY,
      headers: { "content-type": "application/octet-stream", "x-locker-sha256": EMPTY_SHA },
    });
    assert.equal(streamed.status, 201, streamed.text);
    assert.equal(streamed.data.size_bytes, 0);

    for (const path of ["g/blank.csv", "g/.gitkeep"]) {
      assert.equal((await api("DELETE", `/api/files/empty/${path}`, { key })).status, 200);
    }
    const s = await stats(key);
    assert.equal(s.files, 0);
    assert.equal(s.blobs, 0);
    assert.ok(!(await objectExists(transport, tenant, key)));
  });
}

test("declarations no 0 bytes can satisfy are refused before anything is stored", async () => {
  const { key } = await tenantFor("worker");
  const before = await stats(key);
  const lastId = (await logs(key))[0]?.id ?? 0;
  const refusals = [
    // 0 bytes with another digest, and the digest of 0 bytes with bytes.
    [{ size: 0, sha256: sha256hex(Buffer.from("x")) }, 400, "size_mismatch"],
    [{ size: 5 }, 400, "size_mismatch"],
    // A type with a magic number cannot be empty.
    [{ content_type: "image/png" }, 422, "content_mismatch"],
    [{ content_type: "application/pdf" }, 422, "content_mismatch"],
  ];
  for (const [over, status, code] of refusals) {
    const res = await reserve(key, {
      namespace: "empty",
      path: "x.bin",
      sha256: EMPTY_SHA,
      size: 0,
      content_type: "application/octet-stream",
      ...over,
    });
    assert.equal(res.status, status, `${JSON.stringify(over)}: ${res.text}`);
    assert.equal(res.data.error.code, code, res.text);
  }
  const png = await api("PUT", "/api/files/empty/x.png", {
    key,
    body: EMPTY,
    headers: { "content-type": "image/png" },
  });
  assert.equal(png.status, 422, png.text);
  assert.equal(png.data.error.code, "content_mismatch");
  const wrong = await api("PUT", "/api/files/empty/x.bin", {
    key,
    body: EMPTY,
    headers: { "content-type": "application/octet-stream", "x-locker-sha256": sha256hex(Buffer.from("x")) },
  });
  assert.equal(wrong.status, 400, wrong.text);
  assert.equal(wrong.data.error.code, "size_mismatch");
  assert.deepEqual(stored(await stats(key)), stored(before), "registry or storage changed");
  const rows = (await logs(key)).filter((r) => r.id > lastId && !["stats", "logs"].includes(r.operation));
  assert.equal(rows.length, refusals.length + 2, JSON.stringify(rows));
  assert.ok(rows.every((r) => r.success === 0));
});
