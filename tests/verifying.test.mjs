// Uploads in parts larger than LOCKER_VERIFY_INLINE_MAX (32 MiB in the e2e stack, see
// crates/xtask/src/server/runs.rs): complete checks the parts and the stored size, answers 202
// `verifying` and commits nothing; the scheduled run (wrangler dev's /__scheduled) hashes the
// stored object and commits it as an inline complete would, or deletes wrong bytes and aborts.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { api, createKey, logs, tenantName } from "./support/api.mjs";
import { objectOnDisk, registerS3Bucket } from "./support/s3.mjs";
import {
  MIB,
  SyntheticFile,
  afterVerification,
  askParts,
  downloaded,
  reserveFile,
  sendPart,
  uploadFile,
  uploadInfo,
} from "./support/multipart.mjs";

const complete = (key, id) => api("POST", `/v1/uploads/${id}/complete`, { key });
// Just above the e2e stack's 32 MiB: five parts of 8 MiB, the last one a byte.
const SIZE = 32 * MIB + 1;

let bucket;

before(async () => {
  bucket = await registerS3Bucket();
});

test("a large upload is verifying: no file, no dedup, kept; the scheduled run commits it", async () => {
  const key = (await createKey(tenantName("verify-ok"))).key;
  const file = new SyntheticFile("verify-ok", SIZE);
  // A short URL life, so that the scheduled run below comes after the reservation's expiry
  // and grace: the sweep must leave a verifying upload (and its object) alone.
  const { plan, complete: done } = await uploadFile(key, file, { path: "big.bin", expires_in: 8 });
  assert.equal(plan.part_count, 5);
  assert.equal(done.status, 202, done.text);
  const answer = { deduplicated: false, ref: "locker://corp/big.bin", sha256: file.sha256(), size: file.size };
  assert.deepEqual(done.data, { status: "verifying", ...answer });

  // Nothing committed: no file to download, and the bytes are no dedup hit.
  assert.equal((await api("GET", "/v1/files/corp/big.bin", { key })).status, 404);
  const info = await uploadInfo(key, plan.upload_id);
  assert.equal(info.status, 200, info.text);
  assert.equal(info.data.state, "verifying");
  assert.deepEqual(info.data.multipart.parts, []);
  const twin = await reserveFile(key, file, { path: "twin.bin" });
  assert.equal(twin.status, 201, twin.text);
  assert.equal(twin.data.status, "multipart", "not deduplicated while unverified");
  // Ending that other reservation of the same bytes must not take the verifying one's object.
  assert.equal((await api("DELETE", `/v1/uploads/${twin.data.upload_id}`, { key })).status, 200);

  // Completing again says the same; aborting it is refused (it is no longer pending).
  const again = await complete(key, plan.upload_id);
  assert.equal(again.status, 202, again.text);
  assert.deepEqual(again.data, { status: "verifying", ...answer });
  const abort = await api("DELETE", `/v1/uploads/${plan.upload_id}`, { key });
  assert.equal(abort.status, 409, abort.text);
  assert.equal(abort.data.error.code, "upload_closed");

  await sleep(Math.max(0, plan.expires_at * 1000 + 1500 - Date.now()));
  const after = await afterVerification(key, plan.upload_id);
  assert.equal(after.data.state, "committed", "checked, not expired by the sweep");
  const final = await complete(key, plan.upload_id);
  assert.equal(final.status, 200, final.text);
  assert.deepEqual(final.data, { status: "complete", ...answer });
  const got = await api("GET", "/v1/files/corp/big.bin", { key });
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(await downloaded(got.data.url), { sha256: file.sha256(), length: file.size });
  const dedup = await reserveFile(key, file, { path: "copy.bin" });
  assert.equal(dedup.status, 200, dedup.text);
  assert.equal(dedup.data.status, "deduplicated");
  const committed = (await logs(key)).find((e) => e.operation === "complete" && e.bytes === file.size);
  assert.equal(committed?.sha256, file.sha256(), "the scheduled commit wrote its log row");
});

test("wrong bytes in a verifying upload: the scheduled check deletes them, nothing committed", async () => {
  const tenant = tenantName("verify-bad");
  const { key } = await createKey(tenant);
  const route = await api("PUT", "/v1/routes/corp", { key, json: { bucket_id: bucket.id } });
  assert.equal(route.status, 200, route.text);
  const file = new SyntheticFile("verify-bad", SIZE);
  const plan = (await reserveFile(key, file, { path: "bad.bin" })).data;
  assert.equal(plan.transport, "s3");
  const urls = (await askParts(key, plan, file, [1, 2, 3, 4, 5])).data.parts;
  const tampered = Buffer.from(file.part(2, plan.part_size));
  tampered[99] ^= 1;
  // s3s-fs keeps it (it ignores part checksums; AWS and R2 answer 400 BadDigest), and the
  // stored size is right: only the whole object's digest can tell.
  for (const [i, url] of urls.entries()) {
    const put = await sendPart(url, i === 1 ? tampered : file.part(i + 1, plan.part_size));
    assert.equal(put.status, 200, put.text);
  }
  const done = await complete(key, plan.upload_id);
  assert.equal(done.status, 202, done.text);
  assert.equal(done.data.status, "verifying");
  const objectKey = `t/${tenant}/sha256/${file.sha256()}`;
  assert.ok(objectOnDisk(objectKey), "the combined object waits for its check");

  const after = await afterVerification(key, plan.upload_id);
  assert.equal(after.data.state, "aborted");
  assert.ok(!objectOnDisk(objectKey), "the wrong object is deleted");
  assert.equal((await api("GET", "/v1/files/corp/bad.bin", { key })).status, 404);
  const late = await complete(key, plan.upload_id);
  assert.equal(late.status, 409, late.text);
  assert.equal(late.data.error.code, "upload_closed");
  const refusals = (await logs(key)).filter((e) => e.operation === "failed" && e.sha256 === file.sha256());
  assert.ok(
    refusals.some((e) => /^422: .*SHA-256.*\(complete\)$/.test(e.error)),
    `the scheduled refusal is logged: ${JSON.stringify(refusals)}`,
  );
  // The same bytes are no dedup hit: they must be uploaded again.
  const retry = await reserveFile(key, file, { path: "bad.bin" });
  assert.equal(retry.data.status, "multipart", retry.text);
  assert.equal((await api("DELETE", `/v1/uploads/${retry.data.upload_id}`, { key })).status, 200);
});
