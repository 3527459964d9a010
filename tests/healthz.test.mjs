// Walking skeleton: every layer answers. The Worker reaches D1 and R2; the demo page loads the
// wasm module, which asks the Worker and shows the answer.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser, openPage } from "./support/env.mjs";

test("GET /healthz reports D1 and R2 round-trips", async () => {
  const res = await fetch(`${BASE}/healthz`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.equal(body.status, "ok");
  assert.equal(body.server, "local");
  assert.equal(body.d1.ok, true);
  // The migrations ran: the buckets table exists and was counted.
  assert.match(body.d1.detail, /^\d+ bucket\(s\) registered$/);
  assert.equal(body.r2.ok, true);
  assert.equal(typeof body.version, "string");
});

test("an unknown route is not a health answer", async () => {
  const res = await fetch(`${BASE}/no-such-route`);
  assert.equal(res.status, 404);
});

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
