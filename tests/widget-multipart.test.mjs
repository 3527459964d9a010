// The <locker-upload> widget uploading a file in parts, through the Worker into R2 and straight
// to an S3 server (s3s-fs): every part sent once with its own bytes, progress that never goes
// back, and the bytes served back equal to the file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api } from "./support/api.mjs";
import { directBucket } from "./support/direct.mjs";
import {
  MIB,
  assertProgressNeverBack,
  fileOnDisk,
  recordParts,
  servedBack,
  setAttributes,
  watchRows,
} from "./support/parts.mjs";
import { rowIn, widgetPage } from "./support/widget.mjs";

const s3 = directBucket({ browser: true });

async function uploadInParts(label, { routeTo } = {}) {
  const { page, errors, key } = await widgetPage(s3.browser, label, {});
  if (routeTo) {
    const route = await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: routeTo } });
    assert.equal(route.status, 200, route.text);
  }
  // 20 MiB + a little: parts of 8, 8 and 4 MiB + 777 bytes, four at a time by default.
  const file = fileOnDisk(`${label}.bin`, 20 * MIB + 777);
  await setAttributes(page, { "multipart-threshold": String(MIB) });
  await watchRows(page);
  const parts = recordParts(page);
  await page.locator("locker-upload input[type=file]").setInputFiles(file.path);
  await rowIn(page, file.name, "stored", 120_000);

  const sent = [...parts].sort((a, b) => a.number - b.number);
  assert.deepEqual(
    sent.map((p) => [p.number, p.bytes]),
    [
      [1, 8 * MIB],
      [2, 8 * MIB],
      [3, 4 * MIB + 777],
    ],
    "each part sent once, with its own length",
  );
  assertProgressNeverBack(await page.evaluate(() => window.rowLog));
  const [result] = await page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, file.sha256);
  assert.equal(result.deduplicated, false);
  assert.deepEqual(await servedBack(key, file.name), { sha256: file.sha256, length: file.size });
  assert.deepEqual(errors, []);
  await page.close();
  return sent;
}

test("the widget uploads a file in parts through the Worker", async () => {
  const sent = await uploadInParts("parts-worker");
  for (const p of sent) assert.match(new URL(p.url).pathname, /^\/v1\/data\/up_[^/]+\/parts\/\d$/);
});

test("the widget uploads a file in parts straight to the S3 server", async () => {
  const sent = await uploadInParts("parts-s3", { routeTo: s3.bucket.id });
  for (const p of sent) assert.ok(p.url.startsWith(s3.proxy.url), p.url);
});
