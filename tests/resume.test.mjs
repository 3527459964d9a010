// Uploads in parts after a reload, and cancelled: a Chromium profile kept on disk (IndexedDB
// survives), the page killed mid-upload by closing its browser, then the same file picked
// again in a new one. Parts 1 and 2 are held by the test until the kill while part 3 goes
// through, so exactly one part is stored when the page dies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, createKey, tenantName } from "./support/api.mjs";
import { directBucket } from "./support/direct.mjs";
import { BASE, launchPersistent } from "./support/env.mjs";
import {
  MIB,
  fileOnDisk,
  localR2Blobs,
  partNumber,
  profileDir,
  recordParts,
  reservedIds,
  s3PartFiles,
  servedBack,
  setAttributes,
  tokenRoute,
  uploadInfo,
  watchRows,
} from "./support/parts.mjs";
import { S3_BUCKET, S3_ROOT } from "./support/s3.mjs";
import { rowIn, waitUntil } from "./support/widget.mjs";

const s3 = directBucket();
// Parts of 8, 8 and 4 MiB + 5000 bytes: the last one's length is this test's alone, so its
// blob file in local R2 can be counted.
const SIZE = 20 * MIB + 5000;
const LAST = 4 * MIB + 5000;

async function tenant(label, bucketId) {
  const { key } = await createKey(tenantName(label));
  if (bucketId) {
    const route = await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: bucketId } });
    assert.equal(route.status, 200, route.text);
  }
  return key;
}

/** The widget in a browser with the profile `dir`, its token route answered for `key`. */
async function open(dir, key, attributes) {
  const context = await launchPersistent(dir);
  await tokenRoute(context, key);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  const hashWorkers = [];
  page.on("worker", (w) => hashWorkers.push(w.url()));
  await page.goto(new URL("/", BASE).href);
  await setAttributes(page, { "multipart-threshold": String(MIB), "part-concurrency": "3", ...attributes });
  return { context, page, errors, hashWorkers };
}

/**
 * Picks `file` and holds parts 1 and 2 until part 3 is stored. Returns the open browser (the
 * caller kills or cancels) and the reservation's id.
 */
async function startAndHold(dir, key, file, attributes = {}) {
  const run = await open(dir, key, attributes);
  const ids = reservedIds(run.context);
  await run.context.route(
    (url) => url.pathname.includes("/parts/") || url.searchParams.has("partNumber"),
    (route) => {
      const n = partNumber(route.request());
      // Held: never answered, so never stored. Anything else (a preflight, part 3) goes on.
      if (n === 1 || n === 2) return;
      route.continue();
    },
  );
  const lastStored = new Promise((resolve) => {
    run.context.on("response", (r) => {
      if (partNumber(r.request()) === 3 && r.ok()) resolve();
    });
  });
  await run.page.locator("locker-upload input[type=file]").setInputFiles(file.path);
  await lastStored;
  assert.equal(ids.length, 1, "one reservation in parts");
  return { ...run, id: ids[0] };
}

async function reloadAndResume(label, { bucketId, resume = true }) {
  const key = await tenant(label, bucketId);
  const file = fileOnDisk(`${label}.bin`, SIZE);
  const dir = profileDir();
  const attributes = resume ? {} : { resume: "false" };
  const first = await startAndHold(dir, key, file, attributes);
  const info = await uploadInfo(key, first.id);
  assert.equal(info.state, "pending");
  assert.deepEqual(
    info.multipart.parts.map((p) => p.number),
    [3],
  );
  // The page dies mid-upload: nothing of it runs any more, its reservation stays pending.
  await first.context.close();

  const second = await open(dir, key, attributes);
  const ids = reservedIds(second.context);
  const parts = recordParts(second.context);
  await watchRows(second.page);
  await second.page.locator("locker-upload input[type=file]").setInputFiles(file.path);
  await rowIn(second.page, file.name, "stored", 120_000);
  const log = await second.page.evaluate(() => window.rowLog);
  const [result] = await second.page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, file.sha256);
  assert.deepEqual(await servedBack(key, file.name), { sha256: file.sha256, length: file.size });
  assert.deepEqual(second.errors, []);
  await second.context.close();
  return { first, second, ids, parts, log, key };
}

for (const [transport, bucket] of [
  ["the Worker", () => undefined],
  ["the S3 server", () => s3.bucket.id],
]) {
  test(`after a reload only the missing parts go to ${transport}, and the file is not hashed again`, async () => {
    const label = `resume-${bucket() ? "s3" : "worker"}`;
    const { first, ids, parts, log, key, second } = await reloadAndResume(label, { bucketId: bucket() });
    const sent = [...parts].sort((a, b) => a.number - b.number);
    assert.deepEqual(
      sent.map((p) => [p.number, p.bytes]),
      [
        [1, 8 * MIB],
        [2, 8 * MIB],
      ],
      "part 3 was stored before the reload and is not sent again",
    );
    assert.deepEqual(ids, [], "the same reservation goes on");
    assert.deepEqual(second.hashWorkers, [], "no hash worker: the digests were remembered");
    assert.ok(
      log.some((e) => e.status === "Resuming (1 of 3 parts stored)"),
      JSON.stringify(log.map((e) => e.status)),
    );
    const info = await uploadInfo(key, first.id);
    assert.equal(info.state, "committed");
  });
}

test("with resume=false a reload sends every part again", async () => {
  const { parts, ids, log, second } = await reloadAndResume("resume-off", { resume: false });
  assert.deepEqual([...parts].map((p) => p.number).sort(), [1, 2, 3]);
  assert.equal(ids.length, 1, "a fresh reservation");
  assert.ok(second.hashWorkers.length > 0, "the file was hashed again");
  assert.ok(!log.some((e) => e.status.startsWith("Resuming")));
});

for (const [transport, bucket] of [
  ["the Worker (R2)", () => undefined],
  ["the S3 server", () => s3.bucket.id],
]) {
  test(`cancel mid-upload aborts the upload in parts in ${transport}: no part remains`, async () => {
    const label = `cancel-${bucket() ? "s3" : "worker"}`;
    const key = await tenant(label, bucket());
    const file = fileOnDisk(`${label}.bin`, SIZE);
    const stored = () => (bucket() ? s3PartFiles(S3_ROOT, S3_BUCKET, LAST).length : localR2Blobs(LAST));
    const before = stored();
    const run = await startAndHold(profileDir(), key, file);
    assert.equal(stored(), before + 1, "part 3 is in storage");
    await run.page.locator("locker-upload li button", { hasText: "Cancel" }).click();
    await rowIn(run.page, file.name, "cancelled");
    await waitUntil(async () => (await uploadInfo(key, run.id)).state === "aborted");
    const info = await uploadInfo(key, run.id);
    assert.deepEqual(info.multipart.parts, []);
    await waitUntil(() => stored() === before);
    const record = await run.page.evaluate(
      () =>
        new Promise((resolve) => {
          const open = indexedDB.open("locker", 1);
          open.onsuccess = () => {
            const all = open.result.transaction("uploads").objectStore("uploads").getAll();
            all.onsuccess = () => resolve(all.result.length);
          };
        }),
    );
    assert.equal(record, 0, "nothing left to resume");
    assert.deepEqual(run.errors, []);
    await run.context.close();
  });
}

/**
 * Uploads the file picked into a plain `<input type=file>` on `page` with the browser module
 * itself, its signed URLs living `expiresIn` seconds. Resolves once `upload()` has started;
 * `window.uploadDone` settles with `{result}` or `{error}`.
 */
async function startModuleUpload(page, key, file, expiresIn) {
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  assert.equal(minted.status, 201, minted.text);
  await page.evaluate(() => {
    const input = Object.assign(document.createElement("input"), { type: "file", id: "picked" });
    document.body.append(input);
  });
  await page.setInputFiles("#picked", file.path);
  await page.evaluate(
    async ({ token, expiresIn, threshold }) => {
      const { loadModule } = await import(new URL("/locker-upload.js", location.href).href);
      const { Uploader } = await import(new URL("/pkg/locker_web.js", location.href).href);
      await loadModule();
      const uploader = new Uploader({
        endpoint: location.origin,
        namespace: "demo",
        token,
        expiresIn,
        multipartThreshold: threshold,
        partConcurrency: 3,
      });
      const picked = document.querySelector("#picked").files[0];
      window.uploadDone = uploader.upload(picked).then(
        (result) => ({ result }),
        (e) => ({ error: { code: e.code, message: e.message } }),
      );
    },
    { token: minted.data.token, expiresIn, threshold: MIB },
  );
}

test("a remembered upload whose reservation is about to expire starts cleanly", async () => {
  // URLs that live 20 s: within the minute before its end a reservation is not resumed, so the
  // file picked again after the reload gets a fresh reservation and sends every part.
  const key = await tenant("resume-expiring");
  const file = fileOnDisk("resume-expiring.bin", SIZE);
  const dir = profileDir();
  const first = await open(dir, key, {});
  const firstIds = reservedIds(first.context);
  await first.context.route(
    (url) => url.pathname.includes("/parts/"),
    (route) => {
      const n = partNumber(route.request());
      if (n === 1 || n === 2) return;
      route.continue();
    },
  );
  const lastStored = new Promise((resolve) => {
    first.context.on("response", (r) => {
      if (partNumber(r.request()) === 3 && r.ok()) resolve();
    });
  });
  await startModuleUpload(first.page, key, file, 20);
  await lastStored;
  await first.context.close();

  const second = await open(dir, key, {});
  const ids = reservedIds(second.context);
  const parts = recordParts(second.context);
  await startModuleUpload(second.page, key, file, 20);
  const outcome = await second.page.evaluate(() => window.uploadDone);
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.equal(outcome.result.sha256, file.sha256);
  assert.equal(ids.length, 1, "a fresh reservation");
  assert.notEqual(ids[0], firstIds[0]);
  assert.deepEqual([...parts].map((p) => p.number).sort(), [1, 2, 3]);
  assert.deepEqual(await servedBack(key, file.name), { sha256: file.sha256, length: file.size });
  assert.deepEqual(second.errors, []);
  await second.context.close();
});
