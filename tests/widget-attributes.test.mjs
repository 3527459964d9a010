// <locker-upload> follows its attributes after the first upload, as frameworks (React, Vue,
// Svelte) set them after creating the element, and keeps the author's `disabled` apart from a
// disabled <fieldset>. Real Worker, real Chromium; the token routes are the test's own backend.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser, openPage } from "./support/env.mjs";
import { api, bytes, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { corsProxy } from "./support/s3.mjs";
import { pick, recordRequests, rowIn } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/**
 * A fresh tenant and the demo page whose widget has stored one file (`first.bin`) already, so
 * its Uploader exists. The site backend answers two token routes: `/demo/token` mints for the
 * namespace in `backend.namespace`, `/third/token` for `demo` below `third/`; `calls` counts
 * each route.
 */
async function afterFirstUpload(label) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const { page, errors } = await openPage(browser, "/");
  const backend = { namespace: "demo", calls: { demo: 0, third: 0 } };
  const mint = async (route, json) => {
    const res = await api("POST", "/v1/tokens", { key, json });
    assert.equal(res.status, 201, res.text);
    await route.fulfill({ json: res.data });
  };
  await page.route("**/demo/token", (route) => {
    backend.calls.demo += 1;
    return mint(route, { namespace: backend.namespace });
  });
  await page.route("**/third/token", (route) => {
    backend.calls.third += 1;
    return mint(route, { namespace: "demo", path_prefix: "third/" });
  });
  await pick(page, [
    { name: "first.bin", mimeType: "application/octet-stream", buffer: bytes(1000, `${label}-first-`) },
  ]);
  await rowIn(page, "first.bin", "stored");
  assert.equal((await api("GET", "/v1/files/demo/first.bin", { key })).status, 200);
  const widget = page.locator("locker-upload");
  const set = (name, value) =>
    widget.evaluate((el, [n, v]) => (v === null ? el.removeAttribute(n) : el.setAttribute(n, v)), [name, value]);
  return { page, errors, key, backend, widget, set };
}

const file = (name, size = 1000) => ({ name, mimeType: "application/octet-stream", buffer: bytes(size, `${name}-`) });

test("a new namespace takes the next upload there, with a token asked for it", async () => {
  const { page, errors, key, backend, set } = await afterFirstUpload("attr-ns");
  const tokensBefore = backend.calls.demo;
  backend.namespace = "other";
  await set("namespace", "other");
  await pick(page, [file("second.bin")]);
  const row = await rowIn(page, "second.bin", "stored");
  assert.match(await row.textContent(), /locker:\/\/other\/second\.bin/);
  assert.equal((await api("GET", "/v1/files/other/second.bin", { key })).status, 200);
  assert.equal((await api("GET", "/v1/files/demo/second.bin", { key })).status, 404);
  assert.ok(backend.calls.demo > tokensBefore, "a token for the new namespace was asked for");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a new token-url is the one called for the next upload", async () => {
  const { page, errors, key, backend, set } = await afterFirstUpload("attr-token");
  assert.equal(backend.calls.third, 0);
  await set("token-url", "/third/token");
  await pick(page, [file("third.bin")]);
  await rowIn(page, "third.bin", "stored");
  assert.equal(backend.calls.third, 1);
  // The new route's token (and its path prefix) is what the upload used.
  assert.equal((await api("GET", "/v1/files/demo/third/third.bin", { key })).status, 200);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a new max-size refuses the next file before it is hashed; removing it lifts the limit", async () => {
  const { page, errors, key, set } = await afterFirstUpload("attr-max");
  const requests = recordRequests(page);
  await set("max-size", "10");
  await pick(page, [file("big.bin", 100)]);
  const row = await rowIn(page, "big.bin", "error");
  assert.match(await row.textContent(), /big\.bin is 100 bytes; the limit is 10 bytes/);
  assert.deepEqual(
    requests.filter((r) => r.url.endsWith("/v1/uploads")),
    [],
  );
  await set("max-size", null);
  await pick(page, [file("fine.bin", 100)]);
  await rowIn(page, "fine.bin", "stored");
  assert.equal((await api("GET", "/v1/files/demo/fine.bin", { key })).status, 200);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a new endpoint is where the next upload goes", async () => {
  // The same Worker behind another origin (a CORS pass-through proxy), so the requests that
  // reach the new endpoint can be counted.
  const proxy = await corsProxy(BASE);
  try {
    const { page, errors, key, set } = await afterFirstUpload("attr-endpoint");
    assert.deepEqual(proxy.seen, []);
    await set("endpoint", proxy.url);
    const data = bytes(3000, "endpoint-");
    await pick(page, [{ name: "moved.bin", mimeType: "application/octet-stream", buffer: data }]);
    await rowIn(page, "moved.bin", "stored");
    const calls = proxy.seen.map((r) => `${r.method} ${r.url.replace(/up_[^/?]+/, "ID")}`);
    assert.ok(calls.includes("POST /v1/uploads"), calls.join(", "));
    assert.ok(calls.includes("POST /v1/uploads/ID/complete"), calls.join(", "));
    assert.equal((await api("GET", "/v1/files/demo/moved.bin", { key })).data.sha256, sha256hex(data));
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await proxy.close();
  }
});

test("a new concurrency bounds the next uploads", async () => {
  const { page, errors, set } = await afterFirstUpload("attr-conc");
  // Each transfer is held a while so that transfers allowed to overlap do overlap.
  let inFlight = 0;
  let most = 0;
  await page.route("**/v1/data/**", async (route) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 400));
    await route.continue();
    inFlight -= 1;
  });
  const names = ["c1.bin", "c2.bin", "c3.bin"];
  const pickAll = async () => {
    await pick(
      page,
      names.map((n) => file(n, 2000)),
    );
    for (const n of names) await rowIn(page, n, "stored");
  };
  await set("concurrency", "1");
  await pickAll();
  assert.equal(most, 1, "one transfer at a time");
  // And back up: the same three files again under other names overlap.
  most = 0;
  await set("concurrency", "3");
  names.splice(0, 3, "d1.bin", "d2.bin", "d3.bin");
  await pickAll();
  assert.ok(most > 1, `transfers overlapped again (${most})`);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a new stall-timeout applies to the next transfer", async () => {
  // A stand-in for a link that goes silent (the local Worker cannot be made to): the first
  // transfer after the change is held and never answered.
  const { page, errors, key, set } = await afterFirstUpload("attr-stall");
  await set("stall-timeout", "1000");
  let attempts = 0;
  let held;
  await page.route("**/v1/data/**", async (route) => {
    attempts += 1;
    if (attempts === 1) {
      held = Date.now();
      return;
    }
    await route.continue();
  });
  const data = bytes(5000, "stall-attr-");
  await pick(page, [{ name: "silent.bin", mimeType: "application/octet-stream", buffer: data }]);
  // The default (30 s) would still be waiting.
  await rowIn(page, "silent.bin", "stored", 15_000);
  assert.equal(attempts, 2);
  assert.ok(Date.now() - held >= 1000);
  assert.equal((await api("GET", "/v1/files/demo/silent.bin", { key })).data.sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a disabled fieldset disables the widget without touching the author's disabled", async () => {
  const { page, errors, widget } = await afterFirstUpload("attr-disabled");
  const button = page.locator("locker-upload button.pick");
  await widget.evaluate((el) => {
    const fieldset = document.createElement("fieldset");
    fieldset.id = "wrap";
    el.replaceWith(fieldset);
    fieldset.append(el);
  });
  const state = () =>
    widget.evaluate((el) => ({
      attribute: el.hasAttribute("disabled"),
      property: el.disabled,
      matches: el.matches(":disabled"),
    }));
  const fieldset = (disabled) => page.evaluate((d) => (document.getElementById("wrap").disabled = d), disabled);

  // The author did not disable it: the fieldset does, and gives it back enabled.
  await fieldset(true);
  assert.deepEqual(await state(), { attribute: false, property: false, matches: true });
  assert.ok(await button.isDisabled());
  await pick(page, [file("ignored.bin")]);
  assert.equal(await page.locator("locker-upload li", { hasText: "ignored.bin" }).count(), 0);
  await fieldset(false);
  assert.deepEqual(await state(), { attribute: false, property: false, matches: false });
  assert.ok(await button.isEnabled());
  await pick(page, [file("enabled.bin")]);
  await rowIn(page, "enabled.bin", "stored");

  // The author disabled it: the fieldset coming and going leaves it disabled.
  await widget.evaluate((el) => (el.disabled = true));
  await fieldset(true);
  await fieldset(false);
  assert.deepEqual(await state(), { attribute: true, property: true, matches: true });
  assert.ok(await button.isDisabled());

  // The author enables it while the fieldset is disabled: still disabled until the fieldset is not.
  await fieldset(true);
  await widget.evaluate((el) => el.removeAttribute("disabled"));
  assert.deepEqual(await state(), { attribute: false, property: false, matches: true });
  assert.ok(await button.isDisabled());
  await fieldset(false);
  assert.ok(await button.isEnabled());
  assert.deepEqual(errors, []);
  await page.close();
});
