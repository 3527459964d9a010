// rememberDigests: a file hashed once is not read again when it is picked again, on a fresh page
// of the same browser context (IndexedDB kept). Every read of a file's bytes for hashing goes
// through a Blob method (WebCrypto's arrayBuffer, the stream or slices) or is posted to a hash
// worker; the pages count those calls, so "not read" is observed, not timed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launchBrowser } from "./support/env.mjs";
import { api, bytes, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { fileOnDisk } from "./support/parts.mjs";
import { rowIn } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Counts, in every page of the context, the calls that read a Blob's bytes or start a hash job. */
function countReads() {
  window.reads = 0;
  for (const name of ["arrayBuffer", "stream", "slice", "text", "bytes"]) {
    const original = Blob.prototype[name];
    if (!original) continue;
    Blob.prototype[name] = function (...args) {
      window.reads += 1;
      return original.apply(this, args);
    };
  }
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (...args) {
    window.reads += 1;
    return post.apply(this, args);
  };
}

async function freshContext() {
  const context = await browser.newContext();
  await context.addInitScript(countReads);
  return context;
}

async function tenantToken(label) {
  const { key } = await createKey(tenantName(label));
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  assert.equal(minted.status, 201, minted.text);
  return { key, token: minted.data.token };
}

/** A file the page builds: its bytes, and the fingerprint fields the test chooses. */
function file(name, data, lastModified = 1_700_000_000_000) {
  return { name, data: data.toString("base64"), type: "application/octet-stream", lastModified };
}

/**
 * Opens a fresh page in `context` and uploads `files` one after the other through a new
 * Uploader with `options`. `breakStorage`: IndexedDB throws, as in some private modes.
 */
async function uploadIn(context, token, files, options = {}, { breakStorage = false } = {}) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(new URL("/", BASE).href);
  const outcome = await page.evaluate(
    async ({ token, files, options, breakStorage }) => {
      if (breakStorage) {
        indexedDB.open = () => {
          throw new DOMException("storage is off", "SecurityError");
        };
      }
      await (await import("/locker-upload.js")).loadModule();
      const { Uploader } = await import("/pkg/locker_web.js");
      const up = new Uploader({ endpoint: location.origin, token, namespace: "demo", retryDelay: 10, ...options });
      const states = [];
      let hashProgress = 0;
      up.addEventListener("state-change", (e) => states.push(`${e.detail.file.name} ${e.detail.state}`));
      up.addEventListener("hash-progress", () => {
        hashProgress += 1;
      });
      const before = window.reads;
      const results = [];
      for (const f of files) {
        const raw = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
        const picked = new File([raw], f.name, { type: f.type, lastModified: f.lastModified });
        const r = await up.upload(picked);
        results.push({ sha256: r.sha256, deduplicated: r.deduplicated });
      }
      return { results, reads: window.reads - before, hashProgress, states };
    },
    { token, files, options, breakStorage },
  );
  await page.close();
  return { ...outcome, errors };
}

test("with rememberDigests the same files picked on a fresh page are not read, and all dedup", async () => {
  const context = await freshContext();
  const { key, token } = await tenantToken("remember-on");
  const datas = [bytes(150_000, "one-"), bytes(90_000, "two-"), bytes(1, "")];
  const files = datas.map((d, i) => file(`remembered-${i}.bin`, d));
  const digests = datas.map(sha256hex);

  const first = await uploadIn(context, token, files, { rememberDigests: true });
  assert.deepEqual(
    first.results,
    digests.map((sha256) => ({ sha256, deduplicated: false })),
  );
  assert.ok(first.reads >= files.length, `the first pick hashes every file (${first.reads} reads)`);

  const second = await uploadIn(context, token, files, { rememberDigests: true });
  assert.deepEqual(
    second.results,
    digests.map((sha256) => ({ sha256, deduplicated: true })),
  );
  assert.equal(second.reads, 0, "no file was read to be hashed");
  assert.equal(second.hashProgress, 0);
  assert.equal((await api("GET", "/v1/files/demo/remembered-0.bin", { key })).data.sha256, digests[0]);
  assert.deepEqual([...first.errors, ...second.errors], []);
  await context.close();
});

test("without rememberDigests (the default) the same files are hashed again", async () => {
  const context = await freshContext();
  const { token } = await tenantToken("remember-off");
  const data = bytes(120_000, "off-");
  const files = [file("not-remembered.bin", data)];
  const first = await uploadIn(context, token, files);
  const second = await uploadIn(context, token, files);
  assert.deepEqual(second.results, [{ sha256: sha256hex(data), deduplicated: true }]);
  assert.ok(first.reads > 0 && second.reads > 0, `hashed both times (${first.reads}, ${second.reads} reads)`);
  assert.ok(second.hashProgress > 0);
  // Turned on later, it finds nothing kept from the runs without it: hashed once more.
  const third = await uploadIn(context, token, files, { rememberDigests: true });
  assert.ok(third.reads > 0);
  assert.deepEqual([...first.errors, ...second.errors, ...third.errors], []);
  await context.close();
});

test("a file changed with its name, size and lastModified kept is refused, forgotten, hashed and stored right", async () => {
  const context = await freshContext();
  // The old bytes are remembered through one tenant; a tenant that never had them picks the
  // changed file, so its remembered digest is reserved and the bytes sent are not those.
  const old = await tenantToken("remember-old");
  const changed = await tenantToken("remember-changed");
  const before = bytes(100_000, "before-");
  const after = bytes(100_000, "after-");
  const first = await uploadIn(context, old.token, [file("edited.bin", before)], { rememberDigests: true });
  assert.deepEqual(first.results, [{ sha256: sha256hex(before), deduplicated: false }]);

  const second = await uploadIn(context, changed.token, [file("edited.bin", after)], { rememberDigests: true });
  assert.deepEqual(second.results, [{ sha256: sha256hex(after), deduplicated: false }]);
  assert.ok(second.reads > 0, "hashed for real after the refusal");
  // The refusal ended the first run; the same upload started over and was stored.
  assert.ok(second.states.includes("edited.bin failed"), second.states.join(", "));
  assert.equal(second.states.at(-1), "edited.bin stored");
  const served = await api("GET", "/v1/files/demo/edited.bin", { key: changed.key });
  assert.equal(served.data.sha256, sha256hex(after));

  // What is remembered now is the new bytes' digest: picked again, not read, deduplicated.
  const third = await uploadIn(context, changed.token, [file("edited.bin", after)], { rememberDigests: true });
  assert.deepEqual(third.results, [{ sha256: sha256hex(after), deduplicated: true }]);
  assert.equal(third.reads, 0);
  assert.deepEqual([...first.errors, ...second.errors, ...third.errors], []);
  await context.close();
});

test("with storage throwing, rememberDigests only means every file is hashed", async () => {
  const context = await freshContext();
  const { token } = await tenantToken("remember-private");
  const data = bytes(80_000, "private-");
  const files = [file("private.bin", data)];
  const opts = [{ rememberDigests: true }, { breakStorage: true }];
  const first = await uploadIn(context, token, files, ...opts);
  const second = await uploadIn(context, token, files, ...opts);
  assert.deepEqual(first.results, [{ sha256: sha256hex(data), deduplicated: false }]);
  assert.deepEqual(second.results, [{ sha256: sha256hex(data), deduplicated: true }]);
  assert.ok(second.reads > 0, "nothing could be remembered: hashed again");
  assert.deepEqual([...first.errors, ...second.errors], []);
  await context.close();
});

test("the widget's remember-digests attribute: the same file picked after a reload is not read", async () => {
  const context = await freshContext();
  const { key } = await createKey(tenantName("remember-widget"));
  await context.route("**/demo/token", async (route) => {
    const res = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
    await route.fulfill({ json: res.data });
  });
  // A file on disk: picked again it has the same lastModified (a buffer's would be "now").
  const picked = fileOnDisk("widget-remembered.bin", 110_000);
  const pickIn = async (state) => {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e));
    await page.goto(new URL("/", BASE).href);
    await page.locator("locker-upload").evaluate((el) => el.setAttribute("remember-digests", ""));
    await page.locator("locker-upload input[type=file]").setInputFiles(picked.path);
    await rowIn(page, picked.name, state);
    const reads = await page.evaluate(() => window.reads);
    await page.close();
    assert.deepEqual(errors, []);
    return reads;
  };
  assert.ok((await pickIn("stored")) > 0);
  assert.equal(await pickIn("deduplicated"), 0);
  assert.equal((await api("GET", `/v1/files/demo/${picked.name}`, { key })).data.sha256, picked.sha256);
  await context.close();
});
