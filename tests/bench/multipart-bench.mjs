// `cargo xtask bench multipart`: uploads in parts through the browser `Uploader` in Chromium,
// on both transports (`worker`: the Worker's data plane into local R2 under `wrangler dev`;
// `s3`: presigned UploadParts straight to s3s-fs behind the CORS pass-through), against curl
// sending the same part bytes to part URLs the same API hands out; then a resume after the page
// dies at 50 %, and the browser's memory while 2 GiB go up in parts. Called by bench.mjs, which
// owns the page, the browser, the s3 bucket and the tables.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { api, createKey, tenantName } from "../support/api.mjs";
import { BASE, launchPersistent } from "../support/env.mjs";
import { withPeakRss } from "../support/widget.mjs";
import { f0, f1, f2, goal, mbps, median, table } from "./common.mjs";

const run = promisify(execFile);
const MiB = 1 << 20;
// The Uploader's default (`partConcurrency` 4), and curl given the same.
const CONCURRENCY = 4;
// The sizes (1 GiB per transport, 2 GiB for memory) and reps per transport, ours and
// curl interleaved. A loaded machine can take the whole section down to smaller files with
// BENCH_MP_MIB, BENCH_MP_MEMORY_MIB and BENCH_MP_REPS; the tables say what was run.
const envNumber = (name, fallback) => Number(process.env[name] ?? fallback);
const SIZE = envNumber("BENCH_MP_MIB", 1024) * (1 << 20);
const MEMORY_SIZE = envNumber("BENCH_MP_MEMORY_MIB", 2048) * (1 << 20);
const REPS = envNumber("BENCH_MP_REPS", 2);

// MB/s: one decimal, as a loaded machine gives single digits.
const spread = (xs) => `${f1(Math.min(...xs))}-${f1(Math.max(...xs))}`;
const size = (f) => (f.size >= 1 << 30 ? `${f1(f.size / (1 << 30))} GiB` : `${f0(f.size / MiB)} MiB`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The part size the Worker plans for `size` bytes (`locker-core::multipart`, as README says). */
const partSizeOf = (size) => Math.max(8 * MiB, Math.ceil(Math.ceil(size / 10_000) / MiB) * MiB);

/**
 * A file of `size` random bytes (16 MiB of randomness, each 16 MiB stamped with its index, so
 * no two parts are alike), with its SHA-256 and its parts' SHA-256s. With `partsDir`, each
 * part is also written to a file of its own there, for curl's `-T`.
 */
function writeInput(dir, name, size, partsDir) {
  const path = join(dir, name);
  const partSize = partSizeOf(size);
  const chunk = randomBytes(16 * MiB);
  chunk.write(name, 4);
  const whole = createHash("sha256");
  const parts = [];
  const fd = openSync(path, "w");
  let part = null;
  let partFd = null;
  for (let at = 0; at < size; ) {
    if (!part) {
      part = { number: parts.length + 1, hash: createHash("sha256"), left: Math.min(partSize, size - at) };
      if (partsDir) {
        part.path = join(partsDir, `${name}.part-${part.number}`);
        partFd = openSync(part.path, "w");
      }
    }
    const offset = at % (16 * MiB);
    if (offset === 0) chunk.writeUInt32LE(at / (16 * MiB), 0);
    const piece = chunk.subarray(offset, offset + Math.min(16 * MiB - offset, part.left, size - at));
    writeSync(fd, piece);
    whole.update(piece);
    part.hash.update(piece);
    if (partFd !== null) writeSync(partFd, piece);
    part.left -= piece.length;
    at += piece.length;
    if (part.left === 0) {
      if (partFd !== null) closeSync(partFd);
      partFd = null;
      parts.push({ number: part.number, path: part.path, sha256: part.hash.digest("hex") });
      part = null;
    }
  }
  closeSync(fd);
  return { path, name, size, partSize, sha256: whole.digest("hex"), parts };
}

/** A fresh tenant (nothing of an earlier run dedups), its namespace `mp` routed to `bucketId`. */
async function freshTenant(label, bucketId) {
  const { key } = await createKey(tenantName(label));
  if (bucketId) {
    const r = await api("PUT", "/v1/routes/mp", { key, json: { bucket_id: bucketId } });
    if (r.status !== 200) throw new Error(`route to the s3 bucket: ${r.text}`);
  }
  const t = await api("POST", "/v1/tokens", { key, json: { namespace: "mp", ttl: 3600 } });
  if (t.status !== 201) throw new Error(`token: ${t.text}`);
  return { key, token: t.data.token };
}

/** In `page` (at BASE, `window.locker` loaded): a file input of its own and the upload helper. */
async function preparePage(page, paths) {
  await page.evaluate(() => {
    let input = document.getElementById("mp-files");
    if (!input) {
      input = Object.assign(document.createElement("input"), { type: "file", id: "mp-files", multiple: true });
      document.body.append(input);
    }
    window.mpFile = (name) => [...input.files].find((f) => f.name === name);
    // Starts an upload in parts; `window.mp` follows it: the latest progress, and its outcome.
    window.mpStart = (name, { endpoint, token, partConcurrency }) => {
      const up = new window.locker.Uploader({ endpoint, token, namespace: "mp", partConcurrency });
      const mp = { loaded: 0, total: 0, hashedAt: 0 };
      window.mp = mp;
      mp.started = performance.now();
      up.addEventListener("upload-progress", (e) => {
        if (!mp.firstByteAt) mp.firstByteAt = performance.now();
        mp.loaded = e.detail.loaded;
        mp.total = e.detail.total;
      });
      mp.done = up.upload(window.mpFile(name), { path: `mp/${name}` }).then(
        (result) => {
          mp.endedAt = performance.now();
          mp.result = result;
          return result;
        },
        (e) => {
          mp.error = { code: e.code, message: e.message };
          throw e;
        },
      );
      return null;
    };
    window.mpRun = async (name, options) => {
      window.mpStart(name, options);
      const result = await window.mp.done;
      return { result, ms: window.mp.endedAt - window.mp.started };
    };
  });
  await page.setInputFiles("#mp-files", paths);
}

/** The time of the first reservation `POST /v1/uploads` seen on `page`, by the Node clock. */
function watchReserve(page) {
  const seen = { at: 0 };
  const onRequest = (r) => {
    if (!seen.at && r.method() === "POST" && new URL(r.url()).pathname === "/v1/uploads") seen.at = performance.now();
  };
  page.on("request", onRequest);
  return { seen, stop: () => page.off("request", onRequest) };
}

/** Ours: the Uploader, timed from its reservation (the file is hashed by then) to its commit. */
async function oursOnce(page, file, tenant) {
  const watch = watchReserve(page);
  const t = performance.now();
  const r = await page.evaluate(
    ([n, o]) => window.mpRun(n, o),
    [file.name, { endpoint: BASE, token: tenant.token, partConcurrency: CONCURRENCY }],
  );
  const end = performance.now();
  watch.stop();
  if (r.result.sha256 !== file.sha256 || r.result.deduplicated) throw new Error(`upload in parts went wrong: ${r}`);
  return { transferMs: end - watch.seen.at, totalMs: end - t, hashMs: watch.seen.at - t };
}

/**
 * curl: reserve, ask every part's URL with its digest (computed beforehand, as the Uploader has
 * hashed the file before it reserves), PUT the parts `CONCURRENCY` at a time (one curl process
 * each, `-T` the part's own file), then complete. Timed from the reservation to the commit.
 */
async function curlOnce(file, tenant) {
  const t = performance.now();
  const reserved = await api("POST", "/v1/uploads", {
    key: tenant.key,
    json: {
      namespace: "mp",
      path: `mp/curl-${file.name}`,
      sha256: file.sha256,
      size: file.size,
      content_type: "application/octet-stream",
    },
  });
  if (reserved.status !== 201 || reserved.data.status !== "multipart") throw new Error(`reserve: ${reserved.text}`);
  const plan = reserved.data;
  if (plan.part_size !== file.partSize || plan.part_count !== file.parts.length)
    throw new Error(`the plan is not the one computed here: ${reserved.text}`);
  const urls = [];
  for (let i = 0; i < file.parts.length; i += plan.max_parts_per_request) {
    const batch = file.parts.slice(i, i + plan.max_parts_per_request);
    const r = await api("POST", `/v1/uploads/${plan.upload_id}/parts`, {
      key: tenant.key,
      json: { parts: batch.map((p) => ({ number: p.number, sha256: p.sha256 })) },
    });
    if (r.status !== 200) throw new Error(`part URLs: ${r.text}`);
    urls.push(...r.data.parts);
  }
  const queue = [...urls];
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let u = queue.shift(); u; u = queue.shift()) {
        const headers = Object.entries(u.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
        const { stdout } = await run("curl", [
          "-sS",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-X",
          u.method,
          "-T",
          file.parts[u.number - 1].path,
          ...headers,
          u.url,
        ]);
        if (!stdout.trim().startsWith("2")) throw new Error(`curl PUT of part ${u.number} answered ${stdout}`);
      }
    }),
  );
  const c = await api("POST", `/v1/uploads/${plan.upload_id}/complete`, { key: tenant.key });
  if (c.status !== 200) throw new Error(`complete after curl: ${c.text}`);
  return { transferMs: performance.now() - t };
}

/** Resident memory (bytes) of every Chromium process this script started: renderers and all. */
function chromiumRss() {
  const parent = new Map();
  const cmd = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      parent.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      cmd.set(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8"));
    } catch {
      // Ended while we looked.
    }
  }
  const mine = (pid) => {
    for (let p = parent.get(pid); p && p !== "0" && p !== "1"; p = parent.get(p))
      if (p === String(process.pid)) return true;
    return false;
  };
  let total = 0;
  for (const [pid, c] of cmd) {
    if (!/chrom/i.test(c.split("\0")[0]) || !mine(pid)) continue;
    try {
      const rss = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
      total += Number(rss?.[1] ?? 0) * 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/** The part number of a part's PUT on either transport, or 0. */
function partNumber(request) {
  if (request.method() !== "PUT") return 0;
  const url = new URL(request.url());
  const viaWorker = url.pathname.match(/^\/v1\/data\/[^/]+\/parts\/(\d+)$/);
  return Number(viaWorker?.[1] ?? url.searchParams.get("partNumber") ?? 0);
}

/** A persistent Chromium profile in `dir` with the module loaded and `file` picked. */
async function openProfile(dir, file) {
  const context = await launchPersistent(dir);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${BASE}/`);
  await page.evaluate(async () => {
    await (await import("/locker-upload.js")).loadModule();
    window.locker = await import("/pkg/locker_web.js");
  });
  await preparePage(page, [file.path]);
  return { context, page };
}

/**
 * Resume: the upload of `file` runs in a Chromium profile kept on disk until the page's own
 * progress events say half the bytes were sent, then the browser is closed (the page dies, its
 * transfers with it); a new browser on the same profile picks the same file again. Counted on
 * the second run: every part PUT the page sent (Playwright's request events on the context),
 * each carrying exactly its part's plan length (the part URL binds it; another length is
 * refused), and whether each was answered 2xx.
 */
async function resumeOnce(file, tenant) {
  const dir = mkdtempSync(join(tmpdir(), "locker-bench-profile-"));
  try {
    const options = { endpoint: BASE, token: tenant.token, partConcurrency: CONCURRENCY };
    const first = await openProfile(dir, file);
    const ids = [];
    first.context.on("response", async (r) => {
      if (r.request().method() !== "POST" || new URL(r.url()).pathname !== "/v1/uploads") return;
      try {
        const body = await r.json();
        if (body.status === "multipart") ids.push(body.upload_id);
      } catch {
        // The page went away while the answer was read.
      }
    });
    // Every part PUT the first page starts: a part started twice is a retry (the stall
    // watchdog, say), whose bytes the page's progress (the most of each part) does not show.
    const firstPuts = [];
    first.context.on("request", (r) => {
      const number = partNumber(r);
      if (number) firstPuts.push(number);
    });
    await first.page.evaluate(([n, o]) => window.mpStart(n, o), [file.name, options]);
    let sentBefore = 0;
    for (;;) {
      const mp = await first.page.evaluate(() => ({
        loaded: window.mp.loaded,
        total: window.mp.total,
        error: window.mp.error,
      }));
      if (mp.error) throw new Error(`first run failed: ${JSON.stringify(mp.error)}`);
      if (mp.total && mp.loaded >= mp.total / 2) {
        sentBefore = mp.loaded;
        break;
      }
      await sleep(mp.total ? 10 : 100);
    }
    await first.context.close();
    if (ids.length !== 1) throw new Error(`expected one reservation in parts, saw ${ids}`);
    const stored = async () => {
      const info = await api("GET", `/v1/uploads/${ids[0]}`, { key: tenant.key });
      if (info.status !== 200) throw new Error(`upload info: ${info.text}`);
      return info.data.multipart.parts;
    };
    // Parts whose bodies had all been sent may still be stored after the page died (the Worker
    // or storage server was still taking them in): what the reload finds is what stays after
    // the stored set stops changing (2 s apart, 60 s at most).
    const atKill = await stored();
    let parts = atKill;
    for (let tries = 0; tries < 30; tries += 1) {
      await sleep(2000);
      const again = await stored();
      if (again.length === parts.length) break;
      parts = again;
    }
    const sum = (ps) => ps.reduce((a, p) => a + p.size, 0);
    const held = sum(parts);
    const heldParts = parts.length;

    const second = await openProfile(dir, file);
    const puts = [];
    const reserves = [];
    second.context.on("request", (r) => {
      const number = partNumber(r);
      if (number) puts.push(number);
      if (r.method() === "POST" && new URL(r.url()).pathname === "/v1/uploads") reserves.push(r.url());
    });
    const answered = [];
    second.context.on("response", (r) => {
      const number = partNumber(r.request());
      if (number) answered.push({ number, ok: r.ok() });
    });
    const t = performance.now();
    const r = await second.page.evaluate(([n, o]) => window.mpRun(n, o), [file.name, options]);
    const ms = performance.now() - t;
    await second.context.close();
    if (r.result.sha256 !== file.sha256) throw new Error("resumed upload has the wrong digest");
    const final = await api("GET", `/v1/uploads/${ids[0]}`, { key: tenant.key });
    if (final.data?.state !== "committed") throw new Error(`the resumed reservation is ${final.text}`);
    const length = (n) => Math.min(file.partSize, file.size - (n - 1) * file.partSize);
    const heldNumbers = new Set(parts.map((p) => p.number));
    const sentAgain = puts.reduce((a, n) => a + length(n), 0);
    return {
      sentBefore,
      heldAtKill: sum(atKill),
      retriedBefore: firstPuts.length - new Set(firstPuts).size,
      held,
      heldParts,
      sentAgain,
      putsAgain: puts.length,
      storedPartsSentAgain: puts.filter((n) => heldNumbers.has(n)).length,
      refused: answered.filter((a) => !a.ok).length,
      newReservations: reserves.length,
      ms,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The section. `page`: bench.mjs's page at BASE with `window.locker`; `s3BucketId`: the s3s-fs
 * bucket (behind the CORS pass-through) bench.mjs registered; `inputs`: a folder deleted when
 * the script ends; `section(title, body, notes)`: adds a table to the output.
 */
export async function multipartSection({ page, s3BucketId, inputs, section }) {
  const started = performance.now();
  const dir = join(inputs, "multipart");
  const partsDir = join(dir, "parts");
  mkdirSync(partsDir, { recursive: true });
  console.log(`multipart: writing ${SIZE / MiB} MiB (and its parts) and ${MEMORY_SIZE / MiB} MiB`);
  const one = writeInput(dir, "mp-throughput.bin", SIZE, partsDir);
  const two = writeInput(dir, "mp-memory.bin", MEMORY_SIZE);
  await preparePage(page, [one.path, two.path]);

  // ---------- throughput, both transports ----------
  const transports = [
    ["worker", "through the Worker's data plane into R2 (`wrangler dev`)", undefined],
    ["s3", "presigned UploadPart straight to s3s-fs (behind the CORS pass-through)", s3BucketId],
  ];
  const rows = [];
  const notes = [];
  const measured = {};
  for (const [name, how, bucketId] of transports) {
    const ours = [];
    const curl = [];
    for (let rep = 0; rep < REPS; rep += 1) {
      // Interleaved, each on a tenant of its own, so drift hits both alike and nothing dedups.
      console.log(`multipart: ${name} rep ${rep + 1}: Uploader`);
      ours.push(await oursOnce(page, one, await freshTenant(`bench-mp-${name}-ours`, bucketId)));
      console.log(`multipart: ${name} rep ${rep + 1}: curl`);
      curl.push(await curlOnce(one, await freshTenant(`bench-mp-${name}-curl`, bucketId)));
    }
    const oursMbps = ours.map((r) => mbps(one.size, r.transferMs));
    const totalMbps = ours.map((r) => mbps(one.size, r.totalMs));
    const curlMbps = curl.map((r) => mbps(one.size, r.transferMs));
    const ratio = median(oursMbps) / median(curlMbps);
    measured[name] = { ratio, hashMs: median(ours.map((r) => r.hashMs)) };
    rows.push(
      [`${name}: locker \`Uploader\`, reserve to commit`, f1(median(oursMbps)), spread(oursMbps)],
      [`${name}: locker \`Uploader\`, end to end (hash first)`, f1(median(totalMbps)), spread(totalMbps)],
      [`${name}: curl, reserve to commit`, f1(median(curlMbps)), spread(curlMbps)],
      [`${name}: **ratio** (Uploader / curl, reserve to commit)`, `**${f2(ratio)}x**`, ""],
    );
    notes.push(
      goal(
        ratio >= 0.9,
        `${name} transport (${how}): the Uploader at least 0.9x curl's throughput with the same concurrency: ${f2(ratio)}x.`,
      ),
    );
  }
  section(
    `8a. Uploads in parts: ${size(one)}, ${one.parts.length} parts of ${one.partSize / MiB} MiB, ${CONCURRENCY} in flight`,
    table(["", "MB/s (median)", `MB/s (min-max of ${REPS})`], rows),
    [
      `Both sides timed from the reservation to the committed answer of \`complete\` (which hashes the whole stored object again in the Worker), each run on a fresh tenant so nothing dedups. The Uploader has hashed the file (and each part) before it reserves (${f1(measured.worker.hashMs / 1000)} s on the worker runs, median, shown in the end-to-end row); curl gets every part's digest computed beforehand. Ours: \`partConcurrency\` ${CONCURRENCY} (the default), part URLs asked in batches of ${4 * CONCURRENCY} as it goes; curl: the same part URLs asked up front (up to 100 a call), one \`curl -T part-file\` process per part, ${CONCURRENCY} at a time, from the Node side.`,
      ...notes,
    ],
  );

  // ---------- resume ----------
  const resumeRows = [];
  const resumeNotes = [];
  for (const [name, , bucketId] of transports) {
    console.log(`multipart: resume, ${name}`);
    const r = await resumeOnce(one, await freshTenant(`bench-mp-resume-${name}`, bucketId));
    const missing = one.size - r.held;
    // Sent before the kill plus sent after, beyond the file's size: bytes that went twice.
    const resent = r.sentBefore + r.sentAgain - one.size;
    const bound = CONCURRENCY * one.partSize;
    resumeRows.push([
      name,
      f1(r.sentBefore / MiB),
      String(r.retriedBefore),
      f1(r.heldAtKill / MiB),
      `${f1(r.held / MiB)} (${r.heldParts} parts)`,
      f1(missing / MiB),
      `${f1(r.sentAgain / MiB)} (${r.putsAgain} PUTs, ${r.refused} refused)`,
      f1(resent / MiB),
      String(r.storedPartsSentAgain),
      f1(r.ms / 1000),
    ]);
    resumeNotes.push(
      goal(
        resent <= bound &&
          r.retriedBefore === 0 &&
          r.storedPartsSentAgain === 0 &&
          r.newReservations === 0 &&
          r.refused === 0,
        `${name}: bytes sent twice at most partConcurrency x partSize = ${bound / MiB} MiB: ${f1(resent / MiB)} MiB; part PUTs repeated before the kill: ${r.retriedBefore}; no stored part sent again (${r.storedPartsSentAgain}), the same reservation went on (${r.newReservations} new).`,
      ),
    );
  }
  section(
    `8b. Resume after the page dies at 50 % (${size(one)} in parts, ${CONCURRENCY} in flight)`,
    table(
      [
        "transport",
        "MiB sent before the kill",
        "part PUTs repeated before the kill",
        "MiB stored at the kill",
        "MiB stored at the reload",
        "MiB missing",
        "MiB sent after the reload",
        "MiB sent twice",
        "stored parts sent again",
        "second run s",
      ],
      resumeRows,
    ),
    [
      `The upload runs in a Chromium profile kept on disk; when the page's own \`upload-progress\` events say half the file was sent, the browser is closed (the page and its transfers die); a new browser on the same profile picks the same file and uploads again (the record in IndexedDB: the same reservation, digests remembered, not hashed again). "Sent before the kill" is the page's last progress (the XHRs' upload progress, stored parts included); "stored then" is \`GET /v1/uploads/{id}\`; "sent after" counts the part PUTs the second page made (Playwright's request events), each exactly its plan length (the part URL binds it). Sent twice = before + after - file size: the in-flight parts cut off by the kill.`,
      ...resumeNotes,
    ],
  );

  // ---------- memory ----------
  console.log(`multipart: memory, ${size(two)}`);
  const tenant = await freshTenant("bench-mp-memory");
  let allBaseline = 0;
  let allPeak = 0;
  const {
    result: r,
    baseline,
    peak,
  } = await withPeakRss(async () => {
    allBaseline = chromiumRss();
    allPeak = allBaseline;
    const sampler = setInterval(() => {
      allPeak = Math.max(allPeak, chromiumRss());
    }, 50);
    try {
      return await page.evaluate(
        ([n, o]) => window.mpRun(n, o),
        [two.name, { endpoint: BASE, token: tenant.token, partConcurrency: CONCURRENCY }],
      );
    } finally {
      clearInterval(sampler);
      allPeak = Math.max(allPeak, chromiumRss());
    }
  });
  if (r.result.sha256 !== two.sha256) throw new Error("upload for the memory run has the wrong digest");
  const growth = (peak - baseline) / MiB;
  const allGrowth = (allPeak - allBaseline) / MiB;
  section(
    `8c. Memory while uploading ${size(two)} in parts (worker transport, ${two.parts.length} parts, ${CONCURRENCY} in flight)`,
    table(
      ["", "before MiB", "peak MiB", "growth MiB"],
      [
        ["renderer processes (the page and its hash worker)", f1(baseline / MiB), f1(peak / MiB), f1(growth)],
        [
          "every Chromium process (browser, network service, GPU, renderers)",
          f1(allBaseline / MiB),
          f1(allPeak / MiB),
          f1(allGrowth),
        ],
      ],
    ),
    [
      `RSS from /proc, sampled every 50 ms through the whole upload (hash, reserve, ${two.parts.length} part PUTs, complete: ${f1(r.ms / 1000)} s, ${f1(mbps(two.size, r.ms))} MB/s end to end).`,
      goal(
        growth < 64 && allGrowth < 64,
        `growth under 64 MiB: renderers ${f1(growth)} MiB, all of Chromium ${f1(allGrowth)} MiB.`,
      ),
    ],
  );
  rmSync(dir, { recursive: true, force: true });
  console.log(`multipart: the section took ${f1((performance.now() - started) / 60000)} minutes`);
  return (performance.now() - started) / 60000;
}
