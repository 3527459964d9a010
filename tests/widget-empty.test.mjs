// The <locker-upload> widget with an empty file (0 bytes: a blank CSV, an empty `.gitkeep`):
// it is hashed, stored, deduplicated and downloadable like any other file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser } from "./support/env.mjs";
import { api, sha256hex, stats } from "./support/api.mjs";
import { pick, recordRequests, rowIn, widgetPage } from "./support/widget.mjs";

const EMPTY_SHA = sha256hex(Buffer.alloc(0));

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("an empty file is stored through the widget, then deduplicated", async () => {
  const { page, errors, key } = await widgetPage(browser, "wempty");
  const requests = recordRequests(page);
  await pick(page, [{ name: "blank.csv", mimeType: "text/csv", buffer: Buffer.alloc(0) }]);
  const row = await rowIn(page, "blank.csv", "stored", 30_000);
  assert.match(await row.textContent(), /locker:\/\/demo\/blank\.csv/);
  const [result] = await page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, EMPTY_SHA);
  assert.equal(result.size, 0);
  assert.equal(result.deduplicated, false);
  const puts = requests.filter((r) => r.url.includes("/v1/data/"));
  assert.equal(puts.length, 1);
  assert.equal(puts[0].bytes, 0);

  const meta = await api("GET", "/v1/files/demo/blank.csv", { key });
  assert.equal(meta.status, 200, meta.text);
  assert.equal(meta.data.size, 0);
  assert.equal(meta.data.sha256, EMPTY_SHA);
  const got = await fetch(meta.data.url);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("content-length"), "0");

  // The same 0 bytes under another name: already stored, no transfer.
  await pick(page, [{ name: ".gitkeep", mimeType: "", buffer: Buffer.alloc(0) }]);
  await rowIn(page, ".gitkeep", "deduplicated", 30_000);
  assert.equal(requests.filter((r) => r.url.includes("/v1/data/")).length, 1);
  const s = await stats(key);
  assert.equal(s.files, 2);
  assert.equal(s.blobs, 1);
  assert.equal(s.objects, 1);
  assert.deepEqual(errors, []);
  await page.close();
});
