// The browser module's hashing in Chromium: digests agree with sha256sum, stalled streams
// fall back to slices, hashing can be cancelled, and 1 GiB keeps the page's memory flat; small
// files go to WebCrypto in a secure context and to reused hash workers otherwise.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { BASE, CHROMIUM_ARGS, launchBrowser, openPage } from "./support/env.mjs";
import { api, bytes, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { waitUntil, withPeakRss } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("hashBlob, hashFile and Sha256 agree with sha256sum, the empty input too", async () => {
  const { page, errors } = await openPage(browser, "/");
  const inputs = [Buffer.alloc(0), Buffer.from("abc"), bytes(3 * 65536 + 1)];
  const digests = await page.evaluate(
    async (inputs) => {
      await (await import("/locker-upload.js")).loadModule();
      const { hashBlob, hashFile, Sha256 } = await import("/pkg/locker_web.js");
      const out = [];
      for (const data of inputs) {
        const u8 = new Uint8Array(data);
        const h = new Sha256();
        h.update(u8.subarray(0, 7));
        h.update(u8.subarray(7));
        const blob = new Blob([u8]);
        out.push([await hashBlob(blob, { chunkSize: 65536 }), await hashFile(blob), h.hex()]);
      }
      return out;
    },
    inputs.map((b) => [...b]),
  );
  assert.deepEqual(
    digests,
    inputs.map((b) => Array(3).fill(sha256hex(b))),
  );
  assert.equal(digests[0][0], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a byte stream that stalls is dropped and slices finish the hash from where it stopped", async () => {
  // A stand-in for a fault Chromium cannot be made to produce on demand (its Blob stream has
  // been seen to stop for good on a long series of 1 GiB reads): this Blob's stream gives its
  // first 100,000 bytes and then never another. Everything else is the real module.
  const { page, errors } = await openPage(browser, "/");
  const data = bytes(300_000, "stall-");
  const outcome = await page.evaluate(
    async (data) => {
      await (await import("/locker-upload.js")).loadModule();
      const { hashBlob } = await import("/pkg/locker_web.js");
      const u8 = new Uint8Array(data);
      const stalling = (blob) => {
        let pulls = 0;
        blob.stream = () =>
          new ReadableStream({
            type: "bytes",
            pull(controller) {
              pulls += 1;
              if (pulls === 1) controller.enqueue(u8.slice(0, 100_000));
              return new Promise(() => {}); // and nothing ever again
            },
          });
        return blob;
      };
      const started = performance.now();
      const digest = await hashBlob(stalling(new Blob([u8])), { chunkSize: 65536, stallTimeout: 300 });
      const ms = performance.now() - started;
      let refused;
      try {
        await hashBlob(new Blob([u8]), { stallTimeout: 5 });
      } catch (e) {
        refused = [e.code, e.message];
      }
      return { digest, ms, refused };
    },
    [...data],
  );
  assert.equal(outcome.digest, sha256hex(data));
  assert.ok(outcome.ms >= 300, `it waited for the stall timeout (${outcome.ms} ms)`);
  assert.deepEqual(outcome.refused, ["invalid_argument", "stallTimeout must be 100 to 600000 (ms)"]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("hashing can be cancelled, and the hash worker goes away", async () => {
  const { page, errors } = await openPage(browser, "/");
  const outcome = await page.evaluate(async () => {
    await (await import("/locker-upload.js")).loadModule();
    const { hashFile } = await import("/pkg/locker_web.js");
    const blob = new Blob(Array.from({ length: 128 }, () => new Uint8Array(1 << 20)));
    const controller = new AbortController();
    let reports = 0;
    const onProgress = () => {
      reports += 1;
      controller.abort();
    };
    try {
      await hashFile(blob, { onProgress, signal: controller.signal });
      return { finished: true };
    } catch (e) {
      return { name: e.name, code: e.code, reports };
    }
  });
  assert.deepEqual(outcome, { name: "LockerError", code: "aborted", reports: 1 });
  // The worker was terminated, not left hashing in the background.
  await waitUntil(() => page.workers().length === 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test("hashing a 1 GiB file in a Web Worker keeps the page's memory flat", async (t) => {
  // A file on disk, picked through an <input>, as a user's large file is. (A 1 GiB Blob built
  // in memory cannot be read in this headless Chromium: from about 600 MiB on, reading an
  // in-memory Blob fails before any hashing, in incognito and persistent contexts alike.)
  const pattern = Buffer.alloc(1 << 20);
  for (let i = 0; i < pattern.length; i += 1) pattern[i] = (i * 31 + 7) & 255;
  const expected = createHash("sha256");
  const dir = mkdtempSync(join(process.env.E2E_OUTPUT ?? tmpdir(), "big-"));
  const path = join(dir, "one-gib.bin");
  const fd = openSync(path, "w");
  for (let i = 0; i < 1024; i += 1) {
    writeSync(fd, pattern);
    expected.update(pattern);
  }
  closeSync(fd);
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const { page, errors } = await openPage(browser, "/");
  await page.evaluate(async () => {
    const input = Object.assign(document.createElement("input"), { type: "file", id: "big" });
    document.body.append(input);
    await (await import("/locker-upload.js")).loadModule();
    window.hashFile = (await import("/pkg/locker_web.js")).hashFile;
  });
  await page.setInputFiles("#big", path);
  const { result, baseline, peak } = await withPeakRss(async () => {
    const started = Date.now();
    const out = await page.evaluate(async () => {
      const file = document.getElementById("big").files[0];
      const progress = [];
      const digest = await window.hashFile(file, { onProgress: (n) => progress.push(n) });
      return { digest, progress };
    });
    return { ...out, ms: Date.now() - started };
  });
  const { digest, progress, ms } = result;
  const growth = peak - baseline;
  const mib = (n) => (n / 1048576).toFixed(1);
  t.diagnostic(
    `1 GiB hashed in ${ms} ms; renderer RSS ${mib(baseline)} MiB -> peak ${mib(peak)} MiB (growth ${mib(growth)} MiB, limit 64 MiB)`,
  );
  assert.equal(digest, expected.digest("hex"));
  // Progress came in steps and ended at the size.
  assert.ok(progress.length >= 100, `only ${progress.length} progress reports`);
  assert.equal(progress.at(-1), 1 << 30);
  assert.ok(baseline > 0, "found no renderer process to measure");
  assert.ok(growth < 64 * 1048576, `renderer memory grew by ${mib(growth)} MiB`);
  assert.deepEqual(errors, []);
  await page.close();
});

/** `n` bytes of a fixed pattern, as the page builds them too (`patterned` below). */
function pattern(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) b[i] = (i * 31 + 7) & 255;
  return b;
}

test("WebCrypto hashes files up to 64 MiB without a worker, the wasm worker the rest: digests agree around the threshold", async () => {
  const { page, errors } = await openPage(browser, "/");
  const workers = [];
  page.on("worker", (w) => workers.push(w.url()));
  const T = 64 * 1048576;
  const sizes = [T - 1, T, T + 1];
  const out = await page.evaluate(async (sizes) => {
    await (await import("/locker-upload.js")).loadModule();
    const { hashFile } = await import("/pkg/locker_web.js");
    const max = Math.max(...sizes);
    const all = new Uint8Array(max);
    for (let i = 0; i < max; i += 1) all[i] = (i * 31 + 7) & 255;
    const blobs = sizes.map((n) => new Blob([all.subarray(0, n)]));
    const best = [];
    const progress = [];
    // The default first: no worker may start for the two that WebCrypto takes.
    for (const b of blobs) {
      const reports = [];
      best.push(await hashFile(b, { onProgress: (n) => reports.push(n) }));
      progress.push(reports.at(-1));
    }
    const wasm = [];
    for (const b of blobs) wasm.push(await hashFile(b, { webCrypto: false }));
    return { secure: isSecureContext, best, wasm, progress };
  }, sizes);
  const expected = sizes.map((n) => sha256hex(pattern(n)));
  assert.equal(out.secure, true, "127.0.0.1 is a secure context");
  assert.deepEqual(out.best, expected);
  assert.deepEqual(out.wasm, expected);
  assert.deepEqual(out.progress, sizes, "progress ends at the size on either path");
  // One worker in all: none for the two WebCrypto files, one for the file over 64 MiB, and
  // that same one, kept, for the three hashed with `webCrypto: false`.
  assert.equal(workers.length, 1, `workers started: ${workers.length}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a page that is not a secure context hashes in workers, reused: 20 files, hashWorkers 2, 2 workers", async () => {
  // The same Worker under a host name that is not localhost, over plain http: Chromium treats
  // that page as not secure (no `crypto.subtle`), as a real site on http would be.
  const insecure = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP locker.test 127.0.0.1"],
  });
  try {
    const url = new URL(BASE);
    url.hostname = "locker.test";
    const endpoint = url.origin;
    const { key } = await createKey(tenantName("pool"));
    const minted = (await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } })).data;
    const page = await insecure.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e));
    const workers = [];
    page.on("worker", (w) => workers.push(w.url()));
    await page.goto(`${endpoint}/`);
    const files = Array.from({ length: 20 }, (_, i) => ({
      name: `pool-${i}.bin`,
      data: bytes(20_000 + i * 1000, `p${i}-`),
    }));
    const out = await page.evaluate(
      async ({ endpoint, token, files }) => {
        await (await import("/locker-upload.js")).loadModule();
        const { Uploader } = await import("/pkg/locker_web.js");
        const up = new Uploader({ endpoint, token, namespace: "demo", hashWorkers: 2 });
        let hashing = 0;
        let most = 0;
        up.addEventListener("state-change", (e) => {
          if (e.detail.state === "hashing" && e.detail.previous !== "hashing") hashing += 1;
          if (e.detail.previous === "hashing" && e.detail.state !== "hashing") hashing -= 1;
          most = Math.max(most, hashing);
        });
        const results = await Promise.all(files.map((f) => up.upload(new File([new Uint8Array(f.data)], f.name))));
        return { secure: isSecureContext, subtle: typeof crypto.subtle, most, digests: results.map((r) => r.sha256) };
      },
      { endpoint, token: minted.token, files: files.map((f) => ({ name: f.name, data: [...f.data] })) },
    );
    assert.deepEqual([out.secure, out.subtle], [false, "undefined"], "the page is not a secure context");
    assert.deepEqual(
      out.digests,
      files.map((f) => sha256hex(f.data)),
    );
    assert.ok(out.most <= 2, `${out.most} files hashed at once`);
    assert.equal(workers.length, 2, `hash workers started for 20 files: ${workers.length}`);
    assert.deepEqual(errors, []);
  } finally {
    await insecure.close();
  }
});
