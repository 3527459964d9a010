// The <locker-upload> widget in headless Chromium against the real Worker: a picked file is
// hashed, stored and deduplicated; refusals by the Worker and by the widget's own limits; cancel.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser } from "./support/env.mjs";
import { api, bytes, sha256hex, stats } from "./support/api.mjs";
import { pick, recordRequests, rowIn, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const dataPuts = (requests) => requests.filter((r) => r.url.includes("/v1/data/"));

test("a picked file is stored, its digest is sha256 of the bytes, and a second pick sends no body", async () => {
  const { page, errors, key } = await widgetPage(browser, "widget");
  const requests = recordRequests(page);
  // Two 4 MiB slices and an odd tail: the streaming hash crosses slice boundaries.
  const data = bytes(8 * 1024 * 1024 + 12345, "widget-");
  await pick(page, [{ name: "report.bin", mimeType: "application/octet-stream", buffer: data }]);
  const row = await rowIn(page, "report.bin", "stored");
  assert.match(await row.textContent(), /Stored/);
  assert.match(await row.textContent(), /locker:\/\/demo\/report\.bin/);

  const [result] = await page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, sha256hex(data));
  assert.equal(result.size, data.length);
  assert.equal(result.deduplicated, false);
  assert.equal(result.ref, "locker://demo/report.bin");
  assert.equal(dataPuts(requests).length, 1);
  assert.equal(dataPuts(requests)[0].bytes, data.length);

  // What the Worker holds is those bytes.
  const meta = await api("GET", "/v1/files/demo/report.bin", { key });
  assert.equal(meta.status, 200, meta.text);
  assert.equal(meta.data.sha256, sha256hex(data));
  const download = await fetch(meta.data.url);
  assert.equal(sha256hex(Buffer.from(await download.arrayBuffer())), sha256hex(data));
  assert.match(await page.locator("#outcome").textContent(), /^Stored: locker:\/\/demo\/report\.bin/);

  // The same bytes under another name: already stored, nothing sent but the JSON calls.
  const before = requests.length;
  await pick(page, [{ name: "copy.bin", mimeType: "application/octet-stream", buffer: data }]);
  const again = await rowIn(page, "copy.bin", "deduplicated");
  assert.match(await again.textContent(), /Already stored/);
  const second = requests.slice(before);
  assert.deepEqual(dataPuts(second), []);
  assert.ok(
    second.every((r) => r.bytes < 2048),
    JSON.stringify(second),
  );
  assert.deepEqual(
    second.filter((r) => r.url.includes("/v1/")).map((r) => `${r.method} ${new URL(r.url).pathname}`),
    ["POST /v1/uploads"],
  );
  const s = await stats(key);
  assert.equal(s.files, 2);
  assert.equal(s.objects, 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a file the Worker refuses shows the Worker's message and stores nothing", async () => {
  const { page, errors, key } = await widgetPage(browser, "refuse", { max_size: 1000, types: ["image/png"] });
  const requests = recordRequests(page);
  await pick(page, [{ name: "big.png", mimeType: "image/png", buffer: bytes(2000) }]);
  const big = await rowIn(page, "big.png", "error");
  assert.match(await big.textContent(), /Refused: file is 2000 bytes; the limit here is 1000 bytes/);
  await pick(page, [{ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("just text") }]);
  const txt = await rowIn(page, "notes.txt", "error");
  assert.match(await txt.textContent(), /Refused: content type 'text\/plain' is not allowed here/);
  assert.deepEqual(dataPuts(requests), []);
  // A 4xx is a refusal: asked once per file, never retried.
  assert.equal(requests.filter((r) => r.method === "POST" && r.url.endsWith("/v1/uploads")).length, 2);
  const s = await stats(key);
  assert.equal(s.files, 0);
  assert.equal(s.objects, 0);
  assert.equal(s.uploads.pending, 0);
  // The refusal is announced to screen readers.
  assert.match(await page.locator("locker-upload [aria-live]").textContent(), /notes\.txt: Refused/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("client-side accept and max-size refuse before hashing, as a convenience", async () => {
  const { page, errors } = await widgetPage(browser, "client");
  const requests = recordRequests(page);
  await page.$eval("locker-upload", (el) => {
    el.setAttribute("accept", "image/*,.pdf");
    el.setAttribute("max-size", "100");
  });
  await pick(page, [{ name: "a.txt", mimeType: "text/plain", buffer: Buffer.from("x") }]);
  assert.match(await (await rowIn(page, "a.txt", "error")).textContent(), /not an accepted type/);
  await pick(page, [{ name: "b.pdf", mimeType: "application/pdf", buffer: bytes(500) }]);
  assert.match(await (await rowIn(page, "b.pdf", "error")).textContent(), /limit is 100 bytes/);
  assert.deepEqual(
    requests.filter((r) => r.url.includes("/v1/")),
    [],
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test("cancelling mid-upload commits nothing and releases the reservation", async () => {
  const { page, errors, key } = await widgetPage(browser, "cancel");
  let held;
  const reached = new Promise((resolve) => {
    page.route("**/v1/data/**", (route) => {
      held = route;
      resolve();
    });
  });
  // Fail fast, with the widget's message, if the upload never gets as far as its transfer.
  const failed = rowIn(page, "slow.bin", "error", 30_000).then(
    async (row) => {
      throw new Error(`the upload failed before its transfer: ${await row.textContent()}`);
    },
    () => {},
  );
  await pick(page, [{ name: "slow.bin", mimeType: "application/octet-stream", buffer: bytes(64 * 1024) }]);
  await Promise.race([reached, failed]);
  failed.catch(() => {});
  const aborted = page.waitForResponse((r) => r.request().method() === "DELETE" && r.url().includes("/v1/uploads/"));
  await page
    .locator("locker-upload li", { hasText: "slow.bin" })
    .getByRole("button", { name: "Cancel slow.bin" })
    .click();
  await rowIn(page, "slow.bin", "cancelled");
  assert.equal((await aborted).status(), 200);
  await held.abort().catch(() => {});
  const s = await stats(key);
  assert.equal(s.files, 0);
  assert.equal(s.objects, 0);
  assert.deepEqual(s.uploads, { pending: 0, committed: 0, aborted: 1, expired: 0 });
  assert.equal(await page.$eval("locker-upload", (el) => el.value.length), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
