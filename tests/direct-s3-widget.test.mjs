// The <locker-upload> widget in Chromium uploading straight to an s3 bucket (s3s-fs behind a CORS
// proxy): the transfer, dedup, and a presigned URL that expired renewed by a fresh reservation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, sha256hex, stats } from "./support/api.mjs";
import { directBucket, objectKey } from "./support/direct.mjs";
import { objectOnDisk } from "./support/s3.mjs";
import { pick, recordRequests, rowIn, uploadPastExpiry, widgetPage } from "./support/widget.mjs";

const s3 = directBucket({ browser: true });

test("the widget uploads straight to the S3 server and dedups there", async () => {
  const { page, errors, key, tenant } = await widgetPage(s3.browser, "direct-widget", {});
  await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: s3.bucket.id } });
  const requests = recordRequests(page);
  const data = bytes(256 * 1024, "widget-direct-");
  await pick(page, [{ name: "direct.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "direct.bin", "stored");
  const puts = requests.filter((r) => r.method === "PUT");
  assert.equal(puts.length, 1);
  assert.ok(puts[0].url.startsWith(s3.proxy.url), puts[0].url);
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
  const { page, errors, key, tenant } = await widgetPage(s3.browser, "direct-expiry", {});
  await api("PUT", "/v1/routes/demo", { key, json: { bucket_id: s3.bucket.id } });
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  const data = bytes(6000, "direct-late-");
  const outcome = await uploadPastExpiry(page, {
    pattern: `${s3.proxy.url}/**`,
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
  assert.equal((await api("GET", "/v1/files/demo/late.bin", { key })).data.bucket_id, s3.bucket.id);
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.deepEqual(s.uploads, { pending: 0, committed: 1, aborted: 1, expired: 0 });
  assert.deepEqual(errors, []);
  await page.close();
});
