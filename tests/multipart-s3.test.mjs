// Uploads in parts straight to storage (the `s3` transport) against the independent S3 server
// of the suite (s3s-fs): the Worker creates the multipart upload, presigns each UploadPart
// (signing its content-length and x-amz-checksum-sha256), lists the parts, completes and
// aborts; the client sends the parts to storage itself. Complete checks the whole object.
//
// What s3s-fs 0.14.1 does not do, and how the tests deal with it: it ignores a part's
// x-amz-checksum-sha256 (AWS and R2 refuse other bytes with BadDigest), so a part with wrong
// bytes is stored and the Worker's whole-object check at complete is what refuses it (tested
// below); and its ListParts names no ETag, so the Worker completes without ETags there (it
// sends each listed ETag when storage names one; s3s-fs ignores them on complete).
import { test, before } from "node:test";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BASE } from "./support/env.mjs";
import { api, createKey, tenantName } from "./support/api.mjs";
import { S3_ROOT, S3_URL, objectOnDisk, registerS3Bucket } from "./support/s3.mjs";
import {
  MIB,
  SyntheticFile,
  afterVerification,
  askParts,
  downloaded,
  partSize,
  reserveFile,
  sendPart,
  sendParts,
  uploadFile,
  uploadInfo,
} from "./support/multipart.mjs";

let bucket;

before(async () => {
  bucket = await registerS3Bucket();
});

/** A tenant whose namespace `corp` goes to the s3 bucket. */
async function routedKey(label) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const route = await api("PUT", "/v1/routes/corp", { key, json: { bucket_id: bucket.id } });
  assert.equal(route.status, 200, route.text);
  return { tenant, key };
}

const complete = (key, id) => api("POST", `/v1/uploads/${id}/complete`, { key });
const objectKey = (tenant, file) => `t/${tenant}/sha256/${file.sha256()}`;
/** Part files s3s-fs keeps for unfinished multipart uploads, in its root folder. */
const partFiles = () => readdirSync(S3_ROOT).filter((n) => n.startsWith(".upload_id-") && n.includes(".part-"));

/**
 * Sends a part storage should refuse. s3s-fs answers before reading a body it refuses and may
 * close the connection while the body is still being sent: the answer, or "connection closed".
 */
const refusedBy = (url, body) =>
  sendPart(url, body).catch((e) => ({ status: "connection closed", text: String(e.cause ?? e) }));
const isRefused = (r) => r.status === 403 || r.status === "connection closed";

async function assertReadBack(key, path, file) {
  const got = await api("GET", `/v1/files/corp/${path}`, { key });
  assert.equal(got.status, 200, got.text);
  assert.ok(got.data.url.startsWith(S3_URL), "a presigned GET at the S3 server");
  assert.deepEqual(await downloaded(got.data.url), { sha256: file.sha256(), length: file.size });
}

test("a 300 MiB file goes straight to S3 in parts and reads back equal", async () => {
  const { tenant, key } = await routedKey("mps3-big");
  const file = new SyntheticFile("big-s3", 300 * MIB);
  const started = Date.now();
  const { plan, complete: done } = await uploadFile(key, file, { path: "big.bin", multipart: undefined });
  assert.equal(plan.transport, "s3");
  assert.equal(plan.part_size, partSize(file.size));
  assert.equal(plan.part_count, 38);
  // Above the e2e stack's LOCKER_VERIFY_INLINE_MAX (32 MiB): the scheduled run checks it.
  assert.equal(done.status, 202, done.text);
  assert.deepEqual([done.data.status, done.data.sha256], ["verifying", file.sha256()]);
  assert.equal((await afterVerification(key, plan.upload_id)).data.state, "committed");
  assert.ok(objectOnDisk(objectKey(tenant, file)));
  await assertReadBack(key, "big.bin", file);
  console.log(`300 MiB straight to S3: ${Date.now() - started} ms`);
});

test("part URLs are presigned UploadParts that sign length and checksum", async () => {
  const { key } = await routedKey("mps3-urls");
  const file = new SyntheticFile("urls-s3", 16 * MIB + 1);
  const plan = (await reserveFile(key, file, { path: "u.bin" })).data;
  const res = await askParts(key, plan, file, [3, 1]);
  assert.equal(res.status, 200, res.text);
  const [three, one] = res.data.parts;
  assert.deepEqual([three.number, three.size, one.number, one.size], [3, 1, 1, 8 * MIB]);
  const url = new URL(three.url);
  assert.equal(url.origin, S3_URL);
  assert.equal(url.searchParams.get("partNumber"), "3");
  assert.ok(url.searchParams.get("uploadId"));
  assert.equal(url.searchParams.get("X-Amz-SignedHeaders"), "content-length;host;x-amz-checksum-sha256");
  const last = file.part(3, plan.part_size);
  assert.equal(last.length, 1);
  assert.equal(three.headers["x-amz-checksum-sha256"], createHash("sha256").update(last).digest("base64"));
  assert.equal((await api("DELETE", `/v1/uploads/${plan.upload_id}`, { key })).status, 200);
});

test("one part, exactly two parts, and two parts and a byte, straight to S3", async () => {
  const { key } = await routedKey("mps3-edges");
  for (const [size, count] of [
    [8 * MIB, 1],
    [16 * MIB, 2],
    [16 * MIB + 1, 3],
  ]) {
    const file = new SyntheticFile(`edge-s3-${size}`, size);
    const path = `edge-${size}.bin`;
    const { plan, complete: done } = await uploadFile(key, file, { path });
    assert.equal(plan.part_count, count);
    assert.equal(done.status, 200, done.text);
    await assertReadBack(key, path, file);
  }
});

test("a part with other bytes is caught at complete: 422, nothing committed, nothing kept", async () => {
  const { tenant, key } = await routedKey("mps3-wrong");
  const file = new SyntheticFile("wrong-s3", 16 * MIB + 1);
  const plan = (await reserveFile(key, file, { path: "wrong.bin" })).data;
  const urls = (await askParts(key, plan, file, [1, 2, 3])).data.parts;
  const tampered = Buffer.from(file.part(2, plan.part_size));
  tampered[99] ^= 1;
  // s3s-fs takes it (it does not check part checksums; AWS and R2 answer 400 BadDigest).
  const put = await sendPart(urls[1], tampered);
  assert.ok([200, 400].includes(put.status), put.text);
  for (const i of [0, 2]) {
    assert.equal((await sendPart(urls[i], file.part(i + 1, plan.part_size))).status, 200);
  }
  const done = await complete(key, plan.upload_id);
  assert.equal(done.status, 422, done.text);
  assert.equal(done.data.error.code, "sha256_mismatch");
  assert.ok(!objectOnDisk(objectKey(tenant, file)), "the wrong object is deleted");
  assert.equal((await api("GET", "/v1/files/corp/wrong.bin", { key })).status, 404);
  const info = await uploadInfo(key, plan.upload_id);
  assert.equal(info.data.state, "aborted");
});

test("tampered part URLs and wrong lengths are refused by storage", async () => {
  const { key } = await routedKey("mps3-tamper");
  const file = new SyntheticFile("tamper-s3", 16 * MIB + 1);
  const plan = (await reserveFile(key, file, { path: "t.bin" })).data;
  const [one, two] = (await askParts(key, plan, file, [1, 2])).data.parts;
  const before = partFiles().length;
  // Part 2's URL sending as part 1: the signature covers partNumber.
  const moved = new URL(two.url);
  moved.searchParams.set("partNumber", "1");
  const r1 = await refusedBy({ ...two, url: moved.href }, file.part(2, plan.part_size));
  assert.ok(isRefused(r1), r1.text);
  if (r1.status === 403) assert.match(r1.text, /SignatureDoesNotMatch/);
  // Another length: content-length is signed.
  const r2 = await refusedBy(one, file.part(1, plan.part_size).subarray(1));
  assert.ok(isRefused(r2), r2.text);
  // Another checksum header than the signed one.
  const r3 = await refusedBy(
    { ...one, headers: { "x-amz-checksum-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" } },
    file.part(1, plan.part_size),
  );
  assert.ok(isRefused(r3), r3.text);
  assert.equal(partFiles().length, before, "storage kept none of them");
  const info = await uploadInfo(key, plan.upload_id);
  assert.deepEqual(info.data.multipart.parts, []);
  const early = await complete(key, plan.upload_id);
  assert.equal(early.status, 409, early.text);
  assert.equal(early.data.error.code, "parts_missing");
  assert.equal((await api("DELETE", `/v1/uploads/${plan.upload_id}`, { key })).status, 200);
});

test("cancel mid-upload aborts the S3 multipart upload: its parts are gone", async () => {
  const { key } = await routedKey("mps3-abort");
  const file = new SyntheticFile("abort-s3", 24 * MIB);
  const before = partFiles().length;
  const plan = (await reserveFile(key, file, { path: "abort.bin" })).data;
  const urls = await sendParts(key, plan, file, { numbers: [1, 3] });
  assert.equal(partFiles().length, before + 2);
  const info = await uploadInfo(key, plan.upload_id);
  assert.deepEqual(
    info.data.multipart.parts.map((p) => [p.number, p.size]),
    [
      [1, 8 * MIB],
      [3, 8 * MIB],
    ],
    "GET lists the parts storage holds (ListParts)",
  );
  const aborted = await api("DELETE", `/v1/uploads/${plan.upload_id}`, { key });
  assert.equal(aborted.status, 200, aborted.text);
  assert.equal(partFiles().length, before, "AbortMultipartUpload removed the parts");
  // The storage upload is gone: a part sent with a URL still in its lifetime is refused there.
  const late = await refusedBy(urls[0], file.part(1, plan.part_size));
  assert.ok(late.status === "connection closed" || late.status >= 400, late.text);
  assert.equal(partFiles().length, before);
  assert.equal((await askParts(key, plan, file, [2])).status, 409);
});

test("the sweep aborts an abandoned S3 multipart upload", async () => {
  const { key } = await routedKey("mps3-sweep");
  const file = new SyntheticFile("sweep-s3", 17 * MIB);
  const before = partFiles().length;
  const plan = (await reserveFile(key, file, { path: "sweep.bin", expires_in: 3 })).data;
  await sendParts(key, plan, file, { numbers: [1, 2] });
  assert.equal(partFiles().length, before + 2);
  await sleep(5500); // URL life 3 s + grace 1 s + margin
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  assert.equal(res.status, 200, await res.text());
  assert.equal(partFiles().length, before, "the sweep aborted it in storage");
  const info = await uploadInfo(key, plan.upload_id);
  assert.equal(info.data.state, "expired");
  assert.deepEqual(info.data.multipart.parts, []);
});
