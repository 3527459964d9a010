// POST /v1/uploads:complete: many completes in one request, each answered and logged as its own
// POST /v1/uploads/{id}/complete, against R2 (worker transport) and s3s-fs (s3 transport).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { api, bytes, createKey, logs, reserve, sha256hex, stats, tenantName, upload } from "./support/api.mjs";
import { directBucket, objectKey, routedTenant } from "./support/direct.mjs";
import { SyntheticFile, reserveFile, sendParts, uploadInfo } from "./support/multipart.mjs";
import { S3_BUCKET, S3_ROOT, objectOnDisk } from "./support/s3.mjs";

const s3 = directBucket();

const completeBatch = (key, json) => api("POST", "/v1/uploads:complete", { key, json });

/** Reserves `data` at `namespace/path` with `key` and PUTs it; returns the reservation. */
async function reserved(key, { namespace = "corp", path, data, contentType, put = true }) {
  const r = await reserve(key, { namespace, path, data, contentType });
  assert.equal(r.status, 201, r.text);
  if (put) {
    const sent = await api("PUT", r.data.url, { body: data, headers: r.data.headers });
    assert.ok(sent.status === 201 || sent.status === 200, sent.text);
  }
  return r.data;
}

/** The access-log rows written after `count` rows existed, oldest first, reading ones left out. */
async function newRows(key, count) {
  const all = await logs(key);
  return all
    .slice(0, all.length - count)
    .reverse()
    .filter((x) => x.operation !== "logs" && x.operation !== "stats");
}

/** What `GET /v1/files/{ns}/{path}` serves, as bytes. */
async function download(key, namespace, path) {
  const meta = await api("GET", `/v1/files/${namespace}/${path}`, { key });
  assert.equal(meta.status, 200, meta.text);
  const res = await fetch(meta.data.url);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

const short = (x) => x.status ?? `${x.http_status} ${x.error.code}`;

test("a mixed batch: each id answered as alone, in order; rows only for what was verified", async () => {
  const { tenant, key } = await routedTenant(s3.bucket, "cbatch");
  const other = await createKey(tenantName("cbatch-other"));

  const good = bytes(300);
  const goodR2 = await reserved(key, { path: "cb/good.bin", data: good });
  const viaS3 = bytes(400);
  const goodS3 = await reserved(key, { namespace: "direct", path: "cb/s3.bin", data: viaS3 });
  const never = await reserved(key, { path: "cb/never.bin", data: bytes(50), put: false });
  // Wrong bytes of the right size at the reserved key: s3s-fs refuses a PUT whose checksum is
  // wrong, so the bytes an S3 server may keep after refusing one are written on its disk here,
  // a stand-in for what the real server cannot be made to do.
  const declared = bytes(120);
  const wrong = await reserved(key, { namespace: "direct", path: "cb/wrong.bin", data: declared, put: false });
  const onDisk = join(S3_ROOT, S3_BUCKET, objectKey(tenant, declared));
  mkdirSync(dirname(onDisk), { recursive: true });
  writeFileSync(onDisk, bytes(120));
  const html = Buffer.from("<html><script>alert(1)</script></html>");
  const fakePng = await reserved(key, { path: "cb/fake.png", data: html, contentType: "image/png" });
  const theirs = await reserved(other.key, { path: "cb/theirs.bin", data: bytes(70) });
  const doneBefore = await upload(key, { path: "cb/done.bin", data: bytes(90) });
  assert.equal(doneBefore.complete.status, 200, doneBefore.complete.text);
  const file = new SyntheticFile(`cbatch-${tenant}`, 5);
  const mp = await reserveFile(key, file, { path: "cb/parts.bin" });
  assert.equal(mp.status, 201, mp.text);
  await sendParts(key, mp.data, file);

  const before = await stats(key);
  const rowsBefore = (await logs(key)).length;
  const otherRowsBefore = (await logs(other.key)).length;
  const ids = [
    goodR2.upload_id,
    goodS3.upload_id,
    never.upload_id,
    wrong.upload_id,
    fakePng.upload_id,
    theirs.upload_id,
    doneBefore.reserve.data.upload_id,
    goodR2.upload_id,
    mp.data.upload_id,
    "up_does_not_exist",
  ];
  const res = await completeBatch(key, { upload_ids: ids });
  assert.equal(res.status, 200, res.text);
  const r = res.data.results;
  assert.deepEqual(r.map(short), [
    "complete",
    "complete",
    "409 not_uploaded",
    "422 sha256_mismatch",
    "422 content_mismatch",
    "404 not_found",
    "complete",
    "complete",
    "complete",
    "404 not_found",
  ]);
  assert.deepEqual(r[0], {
    status: "complete",
    deduplicated: false,
    ref: "locker://corp/cb/good.bin",
    sha256: sha256hex(good),
    size: good.length,
  });
  assert.deepEqual(r[7], r[0], "an id listed twice answers the same at both places");
  assert.equal(r[1].ref, "locker://direct/cb/s3.bin");
  assert.deepEqual(r[6], doneBefore.complete.data, "a committed upload answers as before");
  assert.equal(r[8].ref, "locker://corp/cb/parts.bin");
  // Another tenant's id answers exactly like an unknown one.
  assert.deepEqual(r[5], r[9]);

  // Three new files (R2, s3, parts), nothing for the refused ids; wrong bytes are gone.
  const after = await stats(key);
  assert.equal(after.files, before.files + 3);
  assert.equal(after.blobs, before.blobs + 3);
  assert.equal(objectOnDisk(objectKey(tenant, declared)), false, "the wrong bytes were taken back");
  assert.equal((await uploadInfo(key, wrong.upload_id)).data.state, "aborted");
  assert.equal((await uploadInfo(key, fakePng.upload_id)).data.state, "aborted");
  assert.equal((await uploadInfo(key, never.upload_id)).data.state, "pending");
  assert.equal((await api("GET", "/v1/files/corp/cb/fake.png", { key })).status, 404);

  // The other tenant's upload is untouched: no row in its log, still pending, completed by its
  // owner.
  assert.equal((await newRows(other.key, otherRowsBefore)).length, 0, "no row in the other tenant's log");
  assert.equal((await uploadInfo(other.key, theirs.upload_id)).data.state, "pending");
  const own = await api("POST", `/v1/uploads/${theirs.upload_id}/complete`, { key: other.key });
  assert.equal(own.status, 200, own.text);

  // The files read back byte for byte, from R2 and from s3s-fs.
  assert.ok((await download(key, "corp", "cb/good.bin")).equals(good));
  assert.ok((await download(key, "direct", "cb/s3.bin")).equals(viaS3));
  assert.ok((await download(key, "corp", "cb/parts.bin")).equals(file.range(0, 5)));

  // One access-log row per distinct id, as its single complete writes it; none for the batch.
  const rows = await newRows(key, rowsBefore);
  assert.deepEqual(
    rows
      .slice(0, 9)
      .map((x) => [x.operation, x.path ?? null, x.success])
      .sort(),
    [
      ["complete", "cb/good.bin", 1],
      ["complete", "cb/s3.bin", 1],
      ["failed", "cb/never.bin", 0],
      ["failed", "cb/wrong.bin", 0],
      ["failed", "cb/fake.png", 0],
      ["failed", null, 0],
      ["complete", "cb/done.bin", 1],
      ["complete", "cb/parts.bin", 1],
      ["failed", null, 0],
    ].sort(),
  );
  assert.ok(rows.slice(0, 9).every((x) => x.key_id && x.key_id === rows[0].key_id));
  assert.match(rows.find((x) => x.path === "cb/wrong.bin").error, /^422: /);
  assert.equal(rows.find((x) => x.path === "cb/s3.bin").bucket_id, s3.bucket.id);
  assert.equal(rows.find((x) => x.path === "cb/good.bin").bytes, good.length);
  // Then the downloads' rows and nothing else.
  assert.ok(
    rows.slice(9).every((x) => x.operation === "stat" || x.operation === "download"),
    JSON.stringify(rows.slice(9)),
  );

  // Completing the batch again answers the same for what was committed, and commits nothing.
  const again = await completeBatch(key, { upload_ids: [goodR2.upload_id, goodS3.upload_id, mp.data.upload_id] });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.data.results, [r[0], r[1], r[8]]);
  assert.equal((await stats(key)).files, after.files);
});

test("a token's path prefix is checked per id: the one outside it is refused alone", async () => {
  const { key } = await routedTenant(s3.bucket, "cbatch-token");
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "corp", path_prefix: "in/" } });
  assert.equal(minted.status, 201, minted.text);
  const token = minted.data.token;
  const inside = bytes(30);
  const a = await reserved(key, { path: "in/a.bin", data: inside });
  const b = await reserved(key, { path: "out/b.bin", data: bytes(40) });
  const res = await completeBatch(token, { upload_ids: [b.upload_id, a.upload_id] });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.data.results.map(short), ["403 forbidden", "complete"]);
  assert.equal((await uploadInfo(key, b.upload_id)).data.state, "pending");
  assert.equal((await api("GET", "/v1/files/corp/out/b.bin", { key })).status, 404);
  assert.ok((await download(key, "corp", "in/a.bin")).equals(inside));
  const denied = (await logs(key)).filter((x) => x.operation === "denied");
  assert.deepEqual(
    denied.map((x) => x.path),
    ["out/b.bin"],
  );
});

test("an envelope that is not one is refused whole, and completes nothing", async () => {
  const { key } = await routedTenant(s3.bucket, "cbatch-env");
  const data = bytes(60);
  const pending = await reserved(key, { path: "env/a.bin", data });
  const id = pending.upload_id;
  const cases = [
    [{ upload_ids: [] }, 400, "invalid_json"],
    [{ upload_ids: Array.from({ length: 101 }, () => id) }, 413, "too_large"],
    [{ upload_ids: [id], extra: 1 }, 400, "invalid_json"],
    [{ ids: [id] }, 400, "invalid_json"],
    [{ upload_ids: [1] }, 400, "invalid_json"],
    [{ upload_ids: id }, 400, "invalid_json"],
    [[id], 400, "invalid_json"],
  ];
  for (const [json, status, code] of cases) {
    const res = await completeBatch(key, json);
    assert.equal(res.status, status, `${JSON.stringify(json).slice(0, 60)}: ${res.text}`);
    assert.equal(res.data.error.code, code, res.text);
  }
  const raw = await api("POST", "/v1/uploads:complete", {
    key,
    body: "not json",
    headers: { "content-type": "application/json" },
  });
  assert.equal(raw.status, 400, raw.text);
  const anonymous = await completeBatch(undefined, { upload_ids: [id] });
  assert.equal(anonymous.status, 401, anonymous.text);
  assert.equal((await uploadInfo(key, id)).data.state, "pending");
  assert.equal((await api("GET", "/v1/files/corp/env/a.bin", { key })).status, 404);

  // Exactly 100 ids is a batch (the same id 100 times: completed once).
  const full = await completeBatch(key, { upload_ids: Array.from({ length: 100 }, () => id) });
  assert.equal(full.status, 200, full.text);
  assert.equal(full.data.results.length, 100);
  assert.ok(full.data.results.every((x) => x.status === "complete"));
  assert.ok((await download(key, "corp", "env/a.bin")).equals(data));
  const completes = (await logs(key)).filter((x) => x.operation === "complete");
  assert.equal(completes.length, 1, "one row for an id listed 100 times");
});
