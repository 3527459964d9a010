// The <locker-upload> widget and the browser module, in headless Chromium against the real
// Worker: hashing, dedup, refusals, cancel, retry, form submission and the keyboard.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE, launchBrowser, openPage } from "./support/env.mjs";
import { api, bytes, sha256hex, stats } from "./support/api.mjs";
import { pick, recordRequests, rowIn, uploadPastExpiry, widgetPage, withPeakRss } from "./support/widget.mjs";

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

test("a transfer that fails once is retried and succeeds", async () => {
  const { page, errors, key } = await widgetPage(browser, "retry");
  let attempts = 0;
  await page.route("**/v1/data/**", async (route) => {
    attempts += 1;
    if (attempts === 1) await route.abort("connectionreset");
    else await route.continue();
  });
  const data = bytes(200 * 1024, "retry-");
  await pick(page, [{ name: "flaky.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "flaky.bin", "stored");
  assert.equal(attempts, 2);
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.equal(s.objects, 1);
  assert.equal((await api("GET", "/v1/files/demo/flaky.bin", { key })).data.sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a transfer that stalls is aborted after stall-timeout and retried", async () => {
  // A stand-in for a link that goes silent mid-transfer (no reset, no answer), which the local
  // Worker cannot be made to do: the first transfer's request is held and never answered.
  const { page, errors, key } = await widgetPage(browser, "stall");
  await page.locator("locker-upload").evaluate((el) => el.setAttribute("stall-timeout", "1000"));
  let attempts = 0;
  let held;
  await page.route("**/v1/data/**", async (route) => {
    attempts += 1;
    if (attempts === 1) {
      held = Date.now();
      return; // never continued, fulfilled or aborted
    }
    await route.continue();
  });
  const data = bytes(150 * 1024, "stall-");
  await pick(page, [{ name: "silent.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "silent.bin", "stored");
  assert.equal(attempts, 2);
  assert.ok(Date.now() - held >= 1000, "the retry came after the stall timeout, not before");
  assert.equal((await api("GET", "/v1/files/demo/silent.bin", { key })).data.sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("an expired token is renewed through the token route", async () => {
  const { page, errors, key, minted } = await widgetPage(browser, "renew", { ttl: 2 });
  await pick(page, [{ name: "first.bin", mimeType: "application/octet-stream", buffer: bytes(1000) }]);
  await rowIn(page, "first.bin", "stored");
  const before = minted.length;
  await new Promise((r) => setTimeout(r, 3000));
  await pick(page, [{ name: "second.bin", mimeType: "application/octet-stream", buffer: bytes(1000) }]);
  await rowIn(page, "second.bin", "stored");
  assert.ok(minted.length > before, "no new token was asked for");
  assert.equal((await stats(key)).files, 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test("an expired upload URL (worker transport) is replaced by a fresh reservation", async () => {
  // Real expiry: URLs that live 3 s, the first PUT held until its URL is past that, then sent
  // on to the Worker, whose data plane refuses it. The s3 transport does the same in
  // direct.test.mjs.
  const { page, errors, key } = await widgetPage(browser, "reurl");
  const requests = recordRequests(page);
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  const data = bytes(5000, "late-");
  const outcome = await uploadPastExpiry(page, {
    pattern: "**/v1/data/**",
    token: minted.data.token,
    namespace: "demo",
    expiresIn: 3,
    data,
    name: "late.bin",
  });
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.equal(outcome.result.ref, "locker://demo/late.bin");
  assert.equal(outcome.puts.length, 2);
  assert.equal(outcome.puts[0].status, 403);
  assert.equal(JSON.parse(outcome.puts[0].body).error.code, "expired");
  assert.equal(outcome.puts[1].status, 201);
  assert.deepEqual(outcome.retries, [], "an expired URL is renewed, not retried as it is");
  const reserves = requests.filter((r) => r.method === "POST" && r.url.endsWith("/v1/uploads"));
  assert.equal(reserves.length, 2);
  assert.equal((await api("GET", "/v1/files/demo/late.bin", { key })).data.sha256, sha256hex(data));
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.deepEqual(s.uploads, { pending: 0, committed: 1, aborted: 1, expired: 0 });
  assert.deepEqual(errors, []);
  await page.close();
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

test("the form carries the refs, and `required` blocks it until an upload finished", async () => {
  // The demo page as shipped: its own token route (the demo tenant) and its echo route.
  const { page, errors } = await openPage(browser, "/");
  await page.locator("#submit").click();
  assert.equal(new URL(page.url()).pathname, "/");
  assert.equal(await page.$eval("#demo-form", (f) => f.checkValidity()), false);
  assert.equal(await page.$eval("locker-upload", (el) => el.validationMessage), "Upload a file first.");

  const data = bytes(4096, "form-");
  await pick(page, [{ name: "form.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "form.bin", "stored");
  const [ref] = await page.$eval("locker-upload", (el) => el.value);
  assert.equal(ref, "locker://demo/uploads/form.bin");
  const echoed = page.waitForResponse((r) => r.url().endsWith("/demo/echo"));
  await page.locator("#submit").click();
  const echo = await (await echoed).json();
  assert.deepEqual(echo.fields, [
    ["note", "hello"],
    ["files", ref],
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("files can be dropped on the widget or pasted into it", async () => {
  const { page, errors } = await widgetPage(browser, "drop");
  await page.$eval("locker-upload", (el) => {
    const dropped = new DataTransfer();
    dropped.items.add(new File(["dropped bytes"], "dropped.txt", { type: "text/plain" }));
    el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dropped, bubbles: true, cancelable: true }));
    el.dispatchEvent(new DragEvent("drop", { dataTransfer: dropped, bubbles: true, cancelable: true }));
    const pasted = new DataTransfer();
    pasted.items.add(new File(["pasted bytes"], "pasted.txt", { type: "text/plain" }));
    el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: pasted, bubbles: true, cancelable: true }));
  });
  await rowIn(page, "dropped.txt", "stored");
  await rowIn(page, "pasted.txt", "stored");
  assert.deepEqual(await page.$eval("locker-upload", (el) => el.value), [
    "locker://demo/dropped.txt",
    "locker://demo/pasted.txt",
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the widget works with the keyboard alone", async () => {
  const { page, errors } = await widgetPage(browser, "keys");
  // Listen for the file chooser from the start: Playwright turns on its interception
  // asynchronously, and a chooser opened before that is never reported.
  const choosers = [];
  page.on("filechooser", (c) => choosers.push(c));
  await page.locator("#note").focus();
  await page.keyboard.press("Tab");
  const focused = () =>
    page.evaluate(() => {
      const host = document.activeElement;
      const inner = host?.shadowRoot?.activeElement;
      return {
        host: host?.id,
        label: inner?.getAttribute("aria-label") ?? inner?.textContent,
        outline: inner ? getComputedStyle(inner).outlineStyle : null,
      };
    });
  assert.deepEqual(await focused(), { host: "uploader", label: "Choose files", outline: "solid" });
  await page.keyboard.press("Enter");
  await waitUntil(() => choosers.length === 1);
  await choosers[0].setFiles([{ name: "keys.bin", mimeType: "application/octet-stream", buffer: bytes(1024) }]);
  await rowIn(page, "keys.bin", "stored");
  await page.keyboard.press("Tab");
  assert.deepEqual(await focused(), { host: "uploader", label: "Remove keys.bin", outline: "solid" });
  await page.keyboard.press("Enter");
  assert.equal(await page.locator("locker-upload li").count(), 0);
  assert.equal((await focused()).label, "Choose files");
  assert.deepEqual(errors, []);
  await page.close();
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
  assert.equal(held.length, 1);
  assert.deepEqual(
    (await timeline()).filter((t) => t.startsWith("complete")),
    [],
  );
  for (let i = 0; i < names.length; i += 1) {
    await waitUntil(() => held.length > i);
    assert.equal(held.length, i + 1, "a second transfer started before the first ended");
    await held[i].continue();
    await waitUntil(async () => (await timeline()).includes(`complete ${names[i]}`));
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

async function waitUntil(check, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${check}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
