// The widget loads the browser module (its JS glue and its wasm) on first use, not with the
// page: a page that only shows <locker-upload> downloads neither until a file is added or a
// person points at the widget, and the first file still uploads.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser } from "./support/env.mjs";
import { api, bytes, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { pick, rowIn, waitUntil } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

// A host page with nothing but the widget (the demo page uses the module itself at load).
const PAGE = `<!doctype html><meta charset="utf-8"><title>widget only</title>
<locker-upload namespace="demo" token-url="/demo/token" multiple></locker-upload>
<script type="module" src="/locker-upload.js"></script>`;

async function widgetOnlyPage(label) {
  const { key } = await createKey(tenantName(label));
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  const loaded = [];
  page.on("request", (r) => loaded.push(new URL(r.url()).pathname));
  await page.route(`${BASE}/widget-only.html`, (route) => route.fulfill({ contentType: "text/html", body: PAGE }));
  await page.route("**/demo/token", async (route) => {
    const res = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
    assert.equal(res.status, 201, res.text);
    await route.fulfill({ json: res.data });
  });
  await page.goto(`${BASE}/widget-only.html`, { waitUntil: "networkidle" });
  await page.locator("locker-upload button.pick").waitFor();
  const module = () => loaded.filter((p) => p.startsWith("/pkg/"));
  return { page, errors, module };
}

test("the page loads no module until the first file, which then uploads", async () => {
  const { page, errors, module } = await widgetOnlyPage("lazy");
  // Long enough for a module import the page started at load to show.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(module(), [], "nothing of the module before first use");
  const data = bytes(300_000, "lazy-first-");
  await pick(page, [{ name: "first.bin", mimeType: "application/octet-stream", buffer: data }]);
  const row = await rowIn(page, "first.bin", "stored");
  assert.match(await row.locator(".ref").textContent(), /^locker:\/\/demo\//);
  assert.ok(module().includes("/pkg/locker_web.js"), `glue loaded on first use: ${module()}`);
  assert.ok(module().includes("/pkg/locker_web_bg.wasm"), `wasm loaded on first use: ${module()}`);
  const results = await page.locator("locker-upload").evaluate((el) => el.results);
  assert.equal(results[0].sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("pointing at the widget starts the module's download before any file is picked", async () => {
  const { page, errors, module } = await widgetOnlyPage("lazy-hover");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(module(), []);
  await page.locator("locker-upload button.pick").hover();
  await waitUntil(() => module().includes("/pkg/locker_web_bg.wasm"), 10_000);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a module download that fails shows on the row, and Retry loads it and uploads", async () => {
  // A stand-in for a network fault the local server cannot produce: the first request for
  // the wasm is aborted; every later one goes to the real server.
  const { page, errors, module } = await widgetOnlyPage("lazy-fail");
  let aborted = 0;
  await page.route("**/pkg/locker_web_bg.wasm", async (route) => {
    if (aborted++ === 0) await route.abort("connectionreset");
    else await route.continue();
  });
  await pick(page, [{ name: "late.bin", mimeType: "application/octet-stream", buffer: bytes(1000, "late-") }]);
  const failed = await rowIn(page, "late.bin", "error", 10_000);
  await failed.getByRole("button", { name: "Retry late.bin" }).click();
  await rowIn(page, "late.bin", "stored");
  assert.equal(module().filter((p) => p === "/pkg/locker_web_bg.wasm").length, 2);
  assert.deepEqual(errors, []);
  await page.close();
});
