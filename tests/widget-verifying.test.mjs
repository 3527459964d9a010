// A large upload in parts that the Worker checks on its own (`complete` answers 202
// `verifying`; the e2e stack checks objects in parts above 32 MiB that way): the widget says
// "Verifying", keeps the row busy, and turns it "Stored" once the scheduled check committed it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { api } from "./support/api.mjs";
import { launchBrowser } from "./support/env.mjs";
import { runScheduled } from "./support/multipart.mjs";
import { MIB, fileOnDisk, servedBack, setAttributes, watchRows } from "./support/parts.mjs";
import { rowIn, waitUntil, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("the widget says Verifying until the Worker's scheduled check stores the file", async () => {
  const { page, errors, key } = await widgetPage(browser, "verifying");
  const file = fileOnDisk("verifying.bin", 32 * MIB + 1);
  await setAttributes(page, { "multipart-threshold": String(MIB) });
  await watchRows(page);
  await page.locator("locker-upload input[type=file]").setInputFiles(file.path);

  const row = await rowIn(page, file.name, "verifying", 120_000);
  assert.match(await row.locator(".status").textContent(), /^Verifying/);
  // Not stored yet: the form is still busy and the file is no download.
  assert.equal(await page.$eval("locker-upload", (el) => el.results.length), 0);
  const meta = await api("GET", `/v1/files/demo/${file.name}`, { key });
  assert.equal(meta.status, 404, meta.text);

  await waitUntil(async () => {
    await runScheduled();
    await new Promise((r) => setTimeout(r, 1000));
    return (await page.locator(`locker-upload li[data-state="stored"]`, { hasText: file.name }).count()) === 1;
  }, 90_000);
  const states = (await page.evaluate(() => window.rowLog)).map((e) => e.state);
  const firstVerifying = states.indexOf("verifying");
  assert.ok(firstVerifying > 0, `verifying shown: ${states}`);
  assert.deepEqual(
    [...new Set(states.slice(firstVerifying))],
    ["verifying", "stored"],
    "verifying, then stored, nothing in between",
  );
  const [result] = await page.$eval("locker-upload", (el) => el.results);
  assert.equal(result.sha256, file.sha256);
  assert.deepEqual(await servedBack(key, file.name), { sha256: file.sha256, length: file.size });
  assert.deepEqual(errors, []);
  await page.close();
});
