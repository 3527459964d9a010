// The widget's upload concurrency: bounded, and the next file hashes while others upload.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser } from "./support/env.mjs";
import { api, bytes, sha256hex, stats } from "./support/api.mjs";
import { waitUntil, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("uploads run with bounded concurrency while the next file hashes", async () => {
  const { page, errors, key } = await widgetPage(browser, "overlap");
  // Hold every transfer until the test lets it go, and note what happened in which order.
  const held = [];
  await page.route("**/v1/data/**", (route) => held.push(route));
  const minted = (await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } })).data;
  const names = ["one.bin", "two.bin", "three.bin"];
  const files = names.map((n) => ({ name: n, data: bytes(300 * 1024, n) }));
  await page.evaluate(
    async ({ endpoint, token, files }) => {
      await (await import("/locker-upload.js")).loadModule();
      const { Uploader } = await import("/pkg/locker_web.js");
      const up = new Uploader({ endpoint, token, namespace: "demo", concurrency: 1 });
      window.timeline = [];
      for (const kind of ["hash-progress", "upload-progress", "complete"]) {
        up.addEventListener(kind, (e) => {
          if (kind !== "hash-progress" || e.detail.loaded === e.detail.total) {
            window.timeline.push(`${kind} ${e.detail.file.name}`);
          }
        });
      }
      const blobs = files.map((f) => new File([new Uint8Array(f.data)], f.name));
      window.uploads = Promise.all(blobs.map((b) => up.upload(b)));
    },
    { endpoint: BASE, token: minted.token, files: files.map((f) => ({ name: f.name, data: [...f.data] })) },
  );
  // With concurrency 1 only the first transfer starts, and the others hash meanwhile.
  const timeline = () => page.evaluate(() => window.timeline);
  await waitUntil(async () => (await timeline()).includes("hash-progress three.bin"));
  // Small files hash in milliseconds (WebCrypto): all three may be hashed before the first
  // transfer's request goes out, so wait for it; the second must still not start.
  await waitUntil(() => held.length > 0);
  assert.equal(held.length, 1);
  assert.deepEqual(
    (await timeline()).filter((t) => t.startsWith("complete")),
    [],
  );
  // Files reserve ahead of their turn, together, so the transfers go in the order their
  // reservations were answered, not necessarily the order of the files.
  const completed = async () => (await timeline()).filter((t) => t.startsWith("complete")).length;
  for (let i = 0; i < names.length; i += 1) {
    await waitUntil(() => held.length > i);
    assert.equal(held.length, i + 1, "a second transfer started before the first ended");
    await held[i].continue();
    await waitUntil(async () => (await completed()) === i + 1);
  }
  const results = await page.evaluate(() => window.uploads);
  assert.deepEqual(
    results.map((r) => r.sha256),
    files.map((f) => sha256hex(f.data)),
  );
  assert.equal((await stats(key)).files, 3);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a transfer slot is free once the bytes are sent, before the file completes", async () => {
  // Uppy frees its slot when the PUT ends; so does the Uploader: with concurrency 1 and the first
  // file's complete held, the second file's transfer still goes (and its complete too).
  const { page, errors, key } = await widgetPage(browser, "freeslot");
  // Completes are held whichever route they take (one alone, or gathered into a batch).
  const completes = [];
  const hold = (route) => completes.push(route);
  await page.route("**/v1/uploads/*/complete", hold);
  await page.route("**/v1/uploads:complete", hold);
  const puts = [];
  page.on("request", (r) => {
    if (r.method() === "PUT") puts.push(r.url());
  });
  const minted = (await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } })).data;
  const files = ["first.bin", "second.bin"].map((n) => ({ name: n, data: bytes(200 * 1024, n) }));
  await page.evaluate(
    async ({ endpoint, token, files }) => {
      await (await import("/locker-upload.js")).loadModule();
      const { Uploader } = await import("/pkg/locker_web.js");
      const up = new Uploader({ endpoint, token, namespace: "demo", concurrency: 1 });
      const blobs = files.map((f) => new File([new Uint8Array(f.data)], f.name));
      window.uploads = Promise.all(blobs.map((b) => up.upload(b)));
    },
    { endpoint: BASE, token: minted.token, files: files.map((f) => ({ name: f.name, data: [...f.data] })) },
  );
  // The second transfer goes although no complete has been answered (the first file's may be
  // held back a moment to gather the second's into one batch, or be held here).
  await waitUntil(() => puts.length === 2 && completes.length >= 1);
  assert.equal(puts.length, 2, "each file was sent once");
  assert.equal(await page.evaluate(() => Promise.race([window.uploads.then(() => "done"), "pending"])), "pending");
  await page.unroute("**/v1/uploads/*/complete");
  await page.unroute("**/v1/uploads:complete");
  for (const c of completes) await c.continue();
  const results = await page.evaluate(() => window.uploads);
  assert.deepEqual(
    results.map((r) => r.sha256),
    files.map((f) => sha256hex(f.data)),
  );
  assert.equal((await stats(key)).files, 2);
  assert.deepEqual(errors, []);
  await page.close();
});
