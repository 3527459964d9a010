// The demo page in Chromium: it loads the wasm module and shows the Worker's answer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, openPage } from "./support/env.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("the demo page loads the wasm module and shows the Worker's answer", async () => {
  const { page, errors } = await openPage(browser);
  const wasm = page.waitForResponse((r) => r.url().endsWith("/pkg/locker_web_bg.wasm"));
  await page.reload();
  assert.equal((await wasm).status(), 200);
  const status = page.locator("#health");
  await status.and(page.locator("[data-state=ok]")).waitFor({ timeout: 30_000 });
  assert.match(await status.textContent(), /^Worker \d+\.\d+\.\d+ is ok \(module \d+\.\d+\.\d+\)$/);
  assert.match(await page.locator("#health-d1").textContent(), /^ok: \d+ bucket\(s\) registered/);
  assert.match(await page.locator("#health-r2").textContent(), /^ok: binding BLOBS answered/);
  assert.equal(await page.locator("#health-server").textContent(), "local");
  assert.deepEqual(errors, []);
  await page.close();
});
