// Uploads in parts through the Worker (the `worker` transport): parts pass the Worker's data
// plane, which checks each part's length and SHA-256 before R2 keeps it, into an R2 multipart
// upload; complete checks the whole object's size and digest before anything is committed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BASE } from "./support/env.mjs";
import { api, createKey, logs, stats, tenantName } from "./support/api.mjs";
import {
  MIB,
  SyntheticFile,
  afterVerification,
  askParts,
  downloaded,
  localR2Blobs,
  partSize,
  reserveFile,
  sendPart,
  sendParts,
  sha256hex,
  uploadFile,
  uploadInfo,
} from "./support/multipart.mjs";

const tenantKey = async (label) => (await createKey(tenantName(label))).key;
const complete = (key, id) => api("POST", `/v1/uploads/${id}/complete`, { key });

/** Polls `probe` until it returns true (local R2 deletes part blobs in the background). */
async function eventually(probe, what) {
  for (let i = 0; i < 50; i++) {
    if (await probe()) return;
    await sleep(100);
  }
  assert.fail(`never happened: ${what}`);
}

async function assertReadBack(key, path, file) {
  const got = await api("GET", `/v1/files/corp/${path}`, { key });
  assert.equal(got.status, 200, got.text);
  assert.equal(got.data.size, file.size);
  assert.equal(got.data.sha256, file.sha256());
  assert.deepEqual(await downloaded(got.data.url), { sha256: file.sha256(), length: file.size });
}

test("a 300 MiB file goes through the Worker in parts and reads back equal", async () => {
  const key = await tenantKey("mp-big");
  const file = new SyntheticFile("big-worker", 300 * MIB);
  // No `multipart` field: the Worker's threshold (64 MiB) decides.
  const started = Date.now();
  const { plan, complete: done } = await uploadFile(key, file, { path: "big.bin", multipart: undefined });
  assert.equal(plan.transport, "worker");
  assert.equal(plan.part_size, partSize(file.size));
  assert.equal(plan.part_size, 8 * MIB);
  assert.equal(plan.part_count, 38);
  assert.equal(plan.max_parts_per_request, 100);
  assert.equal(plan.ref, "locker://corp/big.bin");
  // Above the e2e stack's LOCKER_VERIFY_INLINE_MAX (32 MiB): the scheduled run checks it.
  assert.equal(done.status, 202, done.text);
  const answer = { deduplicated: false, ref: "locker://corp/big.bin", sha256: file.sha256(), size: file.size };
  assert.deepEqual(done.data, { status: "verifying", ...answer });
  const info = await afterVerification(key, plan.upload_id);
  assert.equal(info.data.state, "committed");
  const again = await complete(key, plan.upload_id);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.data, { status: "complete", ...answer });
  await assertReadBack(key, "big.bin", file);
  assert.deepEqual(info.data.multipart.parts, [], "parts are combined once committed");
  console.log(`300 MiB through the Worker: ${Date.now() - started} ms`);
});

test("one part, exactly two parts, and two parts and a byte", async () => {
  const key = await tenantKey("mp-edges");
  for (const [size, count, last] of [
    [5, 1, 5],
    [8 * MIB, 1, 8 * MIB],
    [16 * MIB, 2, 8 * MIB],
    [16 * MIB + 1, 3, 1],
  ]) {
    const file = new SyntheticFile(`edge-${size}`, size);
    const path = `edge-${size}.bin`;
    const reserved = await reserveFile(key, file, { path });
    assert.equal(reserved.status, 201, reserved.text);
    const plan = reserved.data;
    assert.deepEqual([plan.status, plan.part_size, plan.part_count], ["multipart", 8 * MIB, count]);
    const urls = await sendParts(key, plan, file);
    assert.equal(urls.at(-1).size, last, `${size}: the last part's length`);
    const done = await complete(key, plan.upload_id);
    assert.equal(done.status, 200, done.text);
    await assertReadBack(key, path, file);
  }
});

test("a part with other bytes is refused and never recorded; complete then lacks it", async () => {
  const key = await tenantKey("mp-wrong");
  const file = new SyntheticFile("wrong-part", 16 * MIB + 1);
  const reserved = await reserveFile(key, file, { path: "wrong.bin" });
  const plan = reserved.data;
  const urls = (await askParts(key, plan, file, [1, 2, 3])).data.parts;
  const tampered = Buffer.from(file.part(1, plan.part_size));
  tampered[12345] ^= 1;
  const refused = await sendPart(urls[0], tampered);
  assert.equal(refused.status, 400, refused.text);
  assert.equal(refused.data.error.code, "sha256_mismatch");
  // The part streams into R2 as it arrives (the Worker aborts R2's side on a mismatch, but
  // local R2 has every byte by then and leaves their blob file). What counts: the part is never
  // recorded, so it is not listed and complete can never use it.
  for (const i of [1, 2]) {
    assert.equal((await sendPart(urls[i], file.part(i + 1, plan.part_size))).status, 201);
  }
  const info = await uploadInfo(key, plan.upload_id);
  assert.equal(info.status, 200, info.text);
  assert.equal(info.data.state, "pending");
  assert.deepEqual(
    info.data.multipart.parts.map((p) => p.number),
    [2, 3],
    "only the parts stored right are listed",
  );
  const early = await complete(key, plan.upload_id);
  assert.equal(early.status, 409, early.text);
  assert.equal(early.data.error.code, "parts_missing");
  assert.match(early.data.error.message, /\b1\b/);
  assert.equal((await api("GET", "/v1/files/corp/wrong.bin", { key })).status, 404, "nothing committed");
  // The right bytes for the part, with the same URL: the upload completes.
  assert.equal((await sendPart(urls[0], file.part(1, plan.part_size))).status, 201);
  const done = await complete(key, plan.upload_id);
  assert.equal(done.status, 200, done.text);
  await assertReadBack(key, "wrong.bin", file);
});

test("tampered part URLs, wrong lengths and numbers are refused", async () => {
  const key = await tenantKey("mp-tamper");
  const file = new SyntheticFile("tamper", 16 * MIB + 1);
  const plan = (await reserveFile(key, file, { path: "t.bin" })).data;
  const [one, , three] = (await askParts(key, plan, file, [1, 2, 3])).data.parts;
  const body = file.part(3, plan.part_size);
  // The signature of part 3 on part 1's path, and a changed signature.
  const moved = three.url.replace("/parts/3?", "/parts/1?");
  const r1 = await sendPart({ ...three, url: moved }, body);
  assert.equal(r1.status, 403, r1.text);
  const sig = new URL(three.url).searchParams.get("sig");
  const flipped = three.url.replace(sig, `${sig.slice(0, -2)}${sig.endsWith("A") ? "B" : "A"}${sig.at(-1)}`);
  const r2 = await sendPart({ ...three, url: flipped }, body);
  assert.equal(r2.status, 403, r2.text);
  // Part 1's URL with 8 MiB - 1 bytes: the wrong length.
  const short = await sendPart(one, file.part(1, plan.part_size).subarray(1));
  assert.equal(short.status, 400, short.text);
  assert.equal(short.data.error.code, "size_mismatch");
  // URLs for parts that are not in the plan, twice the same part, too many at once, bad digests.
  const sha = "0".repeat(64);
  for (const parts of [
    [{ number: 0, sha256: sha }],
    [{ number: 4, sha256: sha }],
    [{ number: 10_001, sha256: sha }],
    [
      { number: 1, sha256: sha },
      { number: 1, sha256: sha },
    ],
    [],
    Array.from({ length: 101 }, () => ({ number: 1, sha256: sha })),
    [{ number: 1, sha256: "xyz" }],
  ]) {
    const res = await api("POST", `/v1/uploads/${plan.upload_id}/parts`, { key, json: { parts } });
    assert.equal(res.status, 400, `${JSON.stringify(parts).slice(0, 80)}: ${res.text}`);
  }
  const info = await uploadInfo(key, plan.upload_id);
  assert.deepEqual(info.data.multipart.parts, [], "no refused request stored a part");
  // Another tenant learns nothing of this upload.
  const other = await tenantKey("mp-other");
  for (const res of [
    await uploadInfo(other, plan.upload_id),
    await askParts(other, plan, file, [1]),
    await complete(other, plan.upload_id),
  ]) {
    assert.equal(res.status, 404, res.text);
  }
});

test("files the Worker cannot take in parts, or in one request, are refused up front", async () => {
  const key = await tenantKey("mp-limits");
  const sha = "1".repeat(64);
  const ask = (size, multipart) =>
    api("POST", "/v1/uploads", {
      key,
      json: {
        namespace: "corp",
        path: "huge.bin",
        sha256: sha,
        size,
        content_type: "application/octet-stream",
        multipart,
      },
    });
  // 10,000 parts of 64 MiB is the most through the Worker.
  const max = 10_000 * 64 * MIB;
  const tooBig = await ask(max + 1, undefined);
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.equal(tooBig.data.error.code, "too_large");
  const fits = await ask(max, undefined);
  assert.equal(fits.status, 201, fits.text);
  assert.equal(fits.data.part_count, 10_000);
  assert.equal(fits.data.part_size, 64 * MIB);
  // One request through the Worker is at most 100 MB.
  const single = await ask(200 * MIB, false);
  assert.equal(single.status, 413, single.text);
  // An empty file is one request, whatever was asked.
  const empty = await api("POST", "/v1/uploads", {
    key,
    json: {
      namespace: "corp",
      path: "empty.bin",
      sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      size: 0,
      content_type: "application/octet-stream",
      multipart: true,
    },
  });
  assert.equal(empty.status, 201, empty.text);
  assert.equal(empty.data.status, "upload");
  assert.equal((await api("DELETE", `/v1/uploads/${fits.data.upload_id}`, { key })).status, 200);
});

test("cancel mid-upload aborts the R2 multipart upload: no part remains, none is taken after", async () => {
  const key = await tenantKey("mp-abort");
  const file = new SyntheticFile("abort", 24 * MIB);
  const blobsBefore = localR2Blobs();
  const plan = (await reserveFile(key, file, { path: "abort.bin" })).data;
  const urls = await sendParts(key, plan, file, { numbers: [1, 2] });
  assert.equal(localR2Blobs(), blobsBefore + 2, "two parts stored in local R2");
  const aborted = await api("DELETE", `/v1/uploads/${plan.upload_id}`, { key });
  assert.equal(aborted.status, 200, aborted.text);
  await eventually(() => localR2Blobs() === blobsBefore, "the parts' blobs are deleted");
  const late = await sendPart(urls[0], file.part(1, plan.part_size));
  assert.equal(late.status, 409, late.text);
  assert.equal(late.data.error.code, "upload_closed");
  const more = await askParts(key, plan, file, [3]);
  assert.equal(more.status, 409, more.text);
  const info = await uploadInfo(key, plan.upload_id);
  assert.equal(info.data.state, "aborted");
  assert.deepEqual(info.data.multipart.parts, []);
  assert.equal((await complete(key, plan.upload_id)).status, 409);
  assert.equal(localR2Blobs(), blobsBefore);
});

test("after complete: a part is refused and completing again answers the same", async () => {
  const key = await tenantKey("mp-after");
  const file = new SyntheticFile("after", 9 * MIB);
  const plan = (await reserveFile(key, file, { path: "after.bin" })).data;
  const urls = await sendParts(key, plan, file);
  const first = await complete(key, plan.upload_id);
  assert.equal(first.status, 200, first.text);
  const late = await sendPart(urls[1], file.part(2, plan.part_size));
  assert.equal(late.status, 409, late.text);
  const again = await complete(key, plan.upload_id);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.data, first.data);
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.equal(s.uploads.committed, 1);
});

test("the sweep aborts an abandoned multipart upload; resuming it starts afresh", async () => {
  const key = await tenantKey("mp-sweep");
  const file = new SyntheticFile("sweep", 17 * MIB);
  const blobsBefore = localR2Blobs();
  const plan = (await reserveFile(key, file, { path: "sweep.bin", expires_in: 3 })).data;
  await sendParts(key, plan, file, { numbers: [2] });
  const info = await uploadInfo(key, plan.upload_id);
  assert.deepEqual(info.data.multipart.parts, [
    { number: 2, size: 8 * MIB, sha256: sha256hex(file.part(2, plan.part_size)) },
  ]);
  assert.equal(localR2Blobs(), blobsBefore + 1);
  await sleep(5500); // URL life 3 s + grace 1 s + margin
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  assert.equal(res.status, 200, await res.text());
  await eventually(() => localR2Blobs() === blobsBefore, "the sweep aborted the R2 upload");
  const after = await uploadInfo(key, plan.upload_id);
  assert.equal(after.data.state, "expired");
  assert.deepEqual(after.data.multipart.parts, []);
  const expiry = (await logs(key)).find((e) => e.operation === "expire");
  assert.equal(expiry?.sha256, file.sha256());
  // The client sees `expired` and reserves again: a new upload, all parts, complete.
  const { plan: again, complete: done } = await uploadFile(key, file, { path: "sweep.bin" });
  assert.notEqual(again.upload_id, plan.upload_id);
  assert.equal(done.status, 200, done.text);
});
