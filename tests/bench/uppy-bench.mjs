// `cargo xtask bench uppy`: locker's Uploader beside Uppy 6 (@uppy/core + @uppy/aws-s3), wired
// against the same Worker the way a user of locker's API would (hash-wasm in a preprocessor,
// `POST /v1/uploads` in `signRequest`, `complete` on `upload-success`), and beside curl through
// URLs of the same kind (the data plane's own ceiling at the same concurrency). Same page, same
// files, same concurrency, the `worker` transport (through the Worker into local R2); a fresh
// tenant for every run, so nothing dedups across runs but the re-run rows.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readdirSync, readSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import { BASE } from "../support/env.mjs";
import { api, createKey, tenantName } from "../support/api.mjs";
import { f2, median } from "./common.mjs";

const run = promisify(execFile);
const MiB = 1 << 20;
// Fewer passes than the other sections: each pass moves 1.3 GiB through the Worker.
const PASSES = 3;
const CONCURRENCY = 3;
const PART_CONCURRENCY = 4;
const NAMESPACE = "bench";
const TYPE = "application/octet-stream";

const secs = (xs) => `${f2(median(xs) / 1000)} (${f2(Math.min(...xs) / 1000)}-${f2(Math.max(...xs) / 1000)})`;
const mbs = (bytes, xs) => (bytes / 1e6 / (median(xs) / 1000)).toFixed(1);

/** A fresh tenant: its key (for curl) and a browser upload token for `bench` (for both pages). */
async function freshTenant(label) {
  const { key } = await createKey(tenantName(label));
  const token = await api("POST", "/v1/tokens", { key, json: { namespace: NAMESPACE, ttl: 3600 } });
  if (token.status !== 201 && token.status !== 200) throw new Error(`mint a token: ${token.text}`);
  return { key, token: token.data.token };
}

/** Reserve, PUT with curl, complete: one file of `f` in `key`'s tenant. */
async function curlOne(key, f) {
  const r = await api("POST", "/v1/uploads", {
    key,
    json: { namespace: NAMESPACE, path: `curl/${f.name}`, sha256: f.sha256, size: f.size, content_type: TYPE },
  });
  if (r.status !== 201) throw new Error(`reserve for curl: ${r.text}`);
  await curlPut(r.data.url, r.data.headers, f.path);
  const c = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  if (c.status !== 200) throw new Error(`complete after curl: ${c.text}`);
  committed(c.data, f, `curl/${f.name}`);
}

/**
 * Throws unless `answer` (a complete's or the Uploader's result) committed `f` as node hashed
 * it: its SHA-256 and size, at `path` in the bench namespace unless `namespace` is given.
 */
function committed(answer, f, path, namespace = NAMESPACE) {
  const ref = `locker://${namespace}/${path}`;
  if (answer?.sha256 !== f.sha256 || answer.size !== f.size || answer.ref !== ref)
    throw new Error(`${f.name}: committed ${JSON.stringify(answer)}, expected ${f.sha256}, ${f.size} bytes, ${ref}`);
}

async function curlPut(url, headers, path) {
  const h = Object.entries(headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const { stdout } = await run("curl", [
    "-sS",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-X",
    "PUT",
    "-T",
    path,
    ...h,
    url,
  ]);
  if (!stdout.trim().startsWith("2")) throw new Error(`curl PUT answered ${stdout}`);
}

/** `items` through `worker` with at most `n` at once. */
async function pool(items, n, worker) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await worker(next);
    }),
  );
}

/**
 * CPU seconds so far of every thread of the local stack (the processes xtask started beside
 * this script: wrangler's node, its workerd processes, s3s-fs) and of the page (this script's
 * Chromium). `thread -> seconds`, named `stack|page command/thread-name pid.tid`.
 */
function stackCpu() {
  const stat = (path) => {
    try {
      const text = readFileSync(path, "utf8");
      const close = text.lastIndexOf(")");
      const fields = text.slice(close + 2).split(" ");
      return {
        comm: text.slice(text.indexOf("(") + 1, close),
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
      };
    } catch {
      return null;
    }
  };
  const parent = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    const s = stat(`/proc/${pid}/stat`);
    if (s) parent.set(Number(pid), s);
  }
  // "page" for Chromium's processes (this script's children), "" for everything else.
  const side = (pid) => {
    for (let p = pid; p > 1; p = parent.get(p)?.ppid ?? 0) {
      if (p === process.pid) return pid === process.pid ? "" : "page ";
      if (p === process.ppid) return pid === process.ppid ? "" : "stack ";
    }
    return "";
  };
  const out = new Map();
  for (const [pid, s] of parent) {
    const where = side(pid);
    if (!where) continue;
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {}
    for (const tid of tids) {
      const t = stat(`/proc/${pid}/task/${tid}/stat`);
      // USER_HZ is 100 on Linux.
      if (t) out.set(`${where}${s.comm}/${t.comm} ${pid}.${tid}`, t.ticks / 100);
    }
  }
  return out;
}

/** What `stackCpu` grew by over `ms` of wall time: per process kind, and the busiest thread. */
function cpuUse(before, after, ms) {
  const byKind = new Map();
  let busiest = { name: "none", share: 0 };
  for (const [name, secs] of after) {
    const used = secs - (before.get(name) ?? 0);
    const kind = name.split("/")[0];
    byKind.set(kind, (byKind.get(kind) ?? 0) + used / (ms / 1000));
    if (name.startsWith("stack workerd") && used / (ms / 1000) > busiest.share)
      busiest = { name, share: used / (ms / 1000) };
  }
  return { byKind, busiest };
}

/** The big file's parts on disk (curl sends whole files) with their SHA-256s. */
function splitParts(file, partSize) {
  const parts = [];
  const fd = openSync(file.path, "r");
  const buffer = Buffer.alloc(partSize);
  for (let at = 0, number = 1; at < file.size; at += partSize, number += 1) {
    const n = readSync(fd, buffer, 0, Math.min(partSize, file.size - at), at);
    const path = `${file.path}.part${number}`;
    writeFileSync(path, buffer.subarray(0, n));
    parts.push({ number, path, sha256: createHash("sha256").update(buffer.subarray(0, n)).digest("hex") });
  }
  closeSync(fd);
  return parts;
}

/** The big file in parts through the Worker with curl: reserve, part URLs, PUTs, complete. */
async function curlInParts(key, file, parts) {
  const r = await api("POST", "/v1/uploads", {
    key,
    json: { namespace: NAMESPACE, path: `curl/${file.name}`, sha256: file.sha256, size: file.size, content_type: TYPE },
  });
  if (r.status !== 201 || r.data.status !== "multipart") throw new Error(`reserve in parts: ${r.text}`);
  const urls = await api("POST", `/v1/uploads/${r.data.upload_id}/parts`, {
    key,
    json: { parts: parts.map((p) => ({ number: p.number, sha256: p.sha256 })) },
  });
  if (urls.status !== 200) throw new Error(`part URLs: ${urls.text}`);
  const byNumber = new Map(urls.data.parts.map((p) => [p.number, p]));
  await pool(parts, PART_CONCURRENCY, (p) =>
    curlPut(byNumber.get(p.number).url, byNumber.get(p.number).headers, p.path),
  );
  const c = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  if (c.status !== 200) throw new Error(`complete in parts: ${c.text}`);
  committed(c.data, file, `curl/${file.name}`);
}

/**
 * The `uppy` section. `page` is bench.mjs's page (the Worker's origin, `locker` and
 * `hashWasmFile` loaded); `writeFile` writes a distinct input file; `section` and `table` print.
 */
export async function uppyBench({ page, writeFile, section, table, goal }) {
  const batch = Array.from({ length: 20 }, (_, i) => writeFile(`uppy-${i}.bin`, 16 * MiB, `uppy-${i}-${Date.now()}`));
  const big = writeFile("uppy-big.bin", 256 * MiB, `uppy-big-${Date.now()}`);
  const bigParts = splitParts(big, 8 * MiB);

  // Uppy as a site would ship it: bundled by esbuild, into the same page.
  const bundle = await esbuild.build({
    stdin: {
      contents: `import Uppy from "@uppy/core"; import AwsS3 from "@uppy/aws-s3"; window.Uppy = Uppy; window.AwsS3 = AwsS3;`,
      resolveDir: process.cwd(),
    },
    bundle: true,
    minify: true,
    format: "iife",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  await page.evaluate(
    ({ endpoint, namespace, type }) => {
      const input = Object.assign(document.createElement("input"), { type: "file", id: "uppy-files", multiple: true });
      document.body.append(input);
      const file = (name) => [...input.files].find((f) => f.name === name);
      const json = (method, url, token, body) =>
        fetch(`${endpoint}${url}`, {
          method,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: body && JSON.stringify(body),
        }).then(async (r) => {
          const data = await r.json();
          if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(data)}`);
          return data;
        });

      // locker: the Uploader, one `upload` per file, as the widget does.
      window.lockerBatch = async (names, token, concurrency, where = namespace) => {
        const up = new window.locker.Uploader({ endpoint, token, namespace: where, concurrency, resume: false });
        let firstByte = null;
        up.addEventListener("upload-progress", () => {
          firstByte ??= performance.now();
        });
        const t = performance.now();
        const results = await Promise.all(names.map((n) => up.upload(file(n))));
        const total = performance.now() - t;
        return {
          total,
          firstByte: (firstByte ?? t) - t,
          dedup: results.filter((r) => r.deduplicated).length,
          results: results.map(({ ref, sha256, size, deduplicated }) => ({ ref, sha256, size, deduplicated })),
        };
      };

      // Uppy 6, wired against locker's API the way its documentation suggests for a custom
      // backend: the digest (hash-wasm, in a Web Worker, the same 4 MiB reads) in a
      // preprocessor, the reservation in `signRequest`, the commit on `upload-success`.
      window.uppyBatch = async (names, token, limit) => {
        const uppy = new window.Uppy({ autoProceed: false });
        const reserved = new Map();
        const completes = [];
        let dedup = 0;
        let firstByte = null;
        uppy.addPreProcessor(async (ids) => {
          for (const id of ids) uppy.setFileMeta(id, { sha256: await window.hashWasmFile(uppy.getFile(id).data) });
        });
        uppy.use(window.AwsS3, {
          limit,
          shouldUseMultipart: false,
          allowedMetaFields: false,
          generateObjectKey: (f) => f.id,
          async signRequest(request) {
            const f = uppy.getFile(request.key);
            const r = await json("POST", "/v1/uploads", token, {
              namespace,
              path: `uppy/${f.name}`,
              sha256: f.meta.sha256,
              size: f.size,
              content_type: request.contentType,
            });
            if (r.status === "deduplicated") {
              // Already stored: nothing to send. signRequest has no way to say "done", so the
              // file ends as an upload error that the page counts as stored.
              dedup += 1;
              throw new Error("deduplicated");
            }
            reserved.set(f.id, r.upload_id);
            return { url: r.url, headers: r.headers };
          },
        });
        uppy.on("upload-progress", () => {
          firstByte ??= performance.now();
        });
        uppy.on("upload-success", (f) => {
          completes.push(json("POST", `/v1/uploads/${reserved.get(f.id)}/complete`, token).then((c) => [f.name, c]));
        });
        for (const n of names) uppy.addFile({ name: n, type, data: file(n), source: "bench" });
        const t = performance.now();
        const result = await uppy.upload();
        const committed = await Promise.all(completes);
        const total = performance.now() - t;
        const failed = (result?.failed ?? []).length;
        if (failed !== dedup) throw new Error(`uppy: ${failed} failed, ${dedup} deduplicated`);
        uppy.destroy();
        return { total, firstByte: (firstByte ?? t) - t, dedup, committed };
      };
    },
    { endpoint: BASE, namespace: NAMESPACE, type: TYPE },
  );
  await page.setInputFiles(
    "#uppy-files",
    [...batch, big].map((f) => f.path),
  );
  const names = batch.map((f) => f.name);
  const byName = new Map(batch.map((f) => [f.name, f]));
  const batchBytes = batch.reduce((a, f) => a + f.size, 0);

  // Interleaved passes, each side in a fresh tenant; the re-runs in the same tenant again.
  // Every timed run also samples the CPU the local stack and the page used meanwhile.
  const cpu = {};
  const timedRun = async (label, f) => {
    const before = stackCpu();
    const t = Date.now();
    const out = await f();
    const ms = Date.now() - t;
    cpu[label] = [...(cpu[label] ?? []), cpuUse(before, stackCpu(), ms)];
    return { ...out, ms };
  };
  // locker with `rememberDigests`: a fresh page of the same browser context (IndexedDB shared)
  // for every run, as a person reloading the site and picking the same files again.
  // The bench's page owns its context (no second page fits there), so these pages share one of
  // their own, made once.
  let remembering;
  const rememberingRun = async (names, token) => {
    remembering ??= await page.context().browser().newContext();
    const fresh = await remembering.newPage();
    try {
      await fresh.goto(`${BASE}/`);
      await fresh.evaluate(async () => {
        await (await import("/locker-upload.js")).loadModule();
        window.locker = await import("/pkg/locker_web.js");
        const input = Object.assign(document.createElement("input"), { type: "file", id: "again", multiple: true });
        document.body.append(input);
      });
      await fresh.setInputFiles(
        "#again",
        batch.map((f) => f.path),
      );
      return await fresh.evaluate(
        async ({ endpoint, namespace, names, token, concurrency }) => {
          const input = document.getElementById("again");
          const file = (name) => [...input.files].find((f) => f.name === name);
          const up = new window.locker.Uploader({
            endpoint,
            token,
            namespace,
            concurrency,
            resume: false,
            rememberDigests: true,
          });
          const t = performance.now();
          const results = await Promise.all(names.map((n) => up.upload(file(n))));
          return {
            total: performance.now() - t,
            dedup: results.filter((r) => r.deduplicated).length,
            results: results.map(({ ref, sha256, size }) => ({ ref, sha256, size })),
          };
        },
        { endpoint: BASE, namespace: NAMESPACE, names, token, concurrency: CONCURRENCY },
      );
    } finally {
      await fresh.close();
    }
  };
  const inPage = (fn, n, token) => page.evaluate(([f, n, t, c]) => window[f](n, t, c), [fn, n, token, CONCURRENCY]);
  const m = {
    locker: [],
    uppy: [],
    curl: [],
    lockerAgain: [],
    uppyAgain: [],
    lockerRemembered: [],
    lockerFirst: [],
    uppyFirst: [],
  };
  const big1 = { locker: [], curl: [], lockerAgain: [] };
  for (let pass = 0; pass < PASSES; pass += 1) {
    const ours = await freshTenant("uppy-ours");
    const theirs = await freshTenant("uppy-uppy");
    const plain = await freshTenant("uppy-curl");
    const a = await timedRun("locker", () => inPage("lockerBatch", names, ours.token));
    const b = await timedRun("uppy", () => inPage("uppyBatch", names, theirs.token));
    const c = await timedRun("curl", () => pool(batch, CONCURRENCY, (f) => curlOne(plain.key, f)));
    const a2 = await inPage("lockerBatch", names, ours.token);
    const b2 = await inPage("uppyBatch", names, theirs.token);
    if (a.dedup !== 0 || b.dedup !== 0) throw new Error("a first run deduplicated");
    // The first run with rememberDigests hashes and remembers (in later passes the same files
    // are remembered already); the second, on another fresh page, is the one measured.
    const a3 = await rememberingRun(names, ours.token);
    const a4 = await timedRun("locker remembered", () => rememberingRun(names, ours.token));
    if ([a2, b2, a3, a4].some((r) => r.dedup !== names.length)) throw new Error("a re-run sent bytes");
    // What was committed is what node wrote: every result of locker's runs, every complete of Uppy's.
    for (const r of [a, a2, a3, a4]) for (const [i, x] of r.results.entries()) committed(x, batch[i], names[i]);
    if (b.committed.length !== names.length) throw new Error(`uppy committed ${b.committed.length} files`);
    for (const [name, c] of b.committed) committed(c, byName.get(name), `uppy/${name}`);
    m.locker.push(a.total);
    m.uppy.push(b.total);
    m.curl.push(c.ms);
    m.lockerFirst.push(a.firstByte);
    m.uppyFirst.push(b.firstByte);
    m.lockerAgain.push(a2.total);
    m.uppyAgain.push(b2.total);
    m.lockerRemembered.push(a4.total);

    // One 256 MiB file: the Uploader in parts through the Worker; curl with the same parts.
    const bigOurs = await freshTenant("uppy-big-ours");
    const bigPlain = await freshTenant("uppy-big-curl");
    const d = await timedRun("locker 256", () => inPage("lockerBatch", [big.name], bigOurs.token));
    const e = await timedRun("curl 256", () => curlInParts(bigPlain.key, big, bigParts));
    const d2 = await inPage("lockerBatch", [big.name], bigOurs.token);
    if (d.dedup !== 0 || d2.dedup !== 1) throw new Error("256 MiB: wrong dedup");
    for (const r of [d, d2]) committed(r.results[0], big, big.name);
    big1.locker.push(d.total);
    big1.curl.push(e.ms);
    big1.lockerAgain.push(d2.total);
  }

  const ratio = median(m.locker.map((x, i) => x / m.uppy[i]));
  const againRatio = median(m.lockerAgain.map((x, i) => x / m.uppyAgain[i]));
  const rememberedRatio = median(m.lockerRemembered.map((x, i) => x / m.uppyAgain[i]));
  const ceiling = median(m.locker.map((x, i) => x / m.curl[i]));
  const uppyCeiling = median(m.uppy.map((x, i) => x / m.curl[i]));
  const bigCeiling = median(big1.locker.map((x, i) => x / big1.curl[i]));
  section(
    "9. Against Uppy 6 in the same page (the `worker` transport: through the Worker into local R2)",
    [
      table(
        [
          `20 files of 16 MiB, ${CONCURRENCY} at a time`,
          "seconds, median (min-max)",
          "MB/s",
          "first byte sent after, s",
        ],
        [
          [
            "locker `Uploader` (hash and upload)",
            secs(m.locker),
            mbs(batchBytes, m.locker),
            f2(median(m.lockerFirst) / 1000),
          ],
          [
            "Uppy 6 + @uppy/aws-s3 (hash-wasm preprocessor, reserve in `signRequest`, complete on `upload-success`)",
            secs(m.uppy),
            mbs(batchBytes, m.uppy),
            f2(median(m.uppyFirst) / 1000),
          ],
          [
            "curl: reserve, PUT, complete (no hashing: the digests are known)",
            secs(m.curl),
            mbs(batchBytes, m.curl),
            "-",
          ],
          ["locker re-run (all deduplicated)", secs(m.lockerAgain), "-", "-"],
          ["Uppy re-run (all deduplicated)", secs(m.uppyAgain), "-", "-"],
          [
            "locker re-run, `rememberDigests` on, a fresh page (all deduplicated, nothing read)",
            secs(m.lockerRemembered),
            "-",
            "-",
          ],
        ],
      ),
      "",
      table(
        ["one file of 256 MiB", "seconds, median (min-max)", "MB/s"],
        [
          [
            `locker \`Uploader\`, in 8 MiB parts, ${PART_CONCURRENCY} at a time`,
            secs(big1.locker),
            mbs(big.size, big1.locker),
          ],
          [
            `curl: the same parts, ${PART_CONCURRENCY} at a time, then complete`,
            secs(big1.curl),
            mbs(big.size, big1.curl),
          ],
          ["locker re-run (deduplicated)", secs(big1.lockerAgain), "-"],
          ["Uppy 6", "cannot: see below", "-"],
        ],
      ),
      "",
      table(
        [
          "CPU while it ran (cores busy, median of passes)",
          "workerd (all)",
          "busiest workerd thread",
          "wrangler's node",
          "Chromium (the page)",
        ],
        Object.entries(cpu).map(([label, uses]) => [
          label,
          f2(median(uses.map((u) => u.byKind.get("stack workerd") ?? 0))),
          f2(median(uses.map((u) => u.busiest.share))),
          f2(median(uses.map((u) => u.byKind.get("stack node") ?? 0))),
          f2(
            median(
              uses.map((u) => [...u.byKind].filter(([k]) => k.startsWith("page ")).reduce((x, [, v]) => x + v, 0)),
            ),
          ),
        ]),
      ),
    ].join("\n"),
    [
      `${PASSES} passes, interleaved (locker, Uppy, curl, then the re-runs: locker and Uppy in the same page, then locker with \`rememberDigests\` twice on fresh pages of the same browser context, the second measured; then the 256 MiB file), each side in a fresh tenant every pass; the re-runs send the same files again in the same tenant, so every file is a dedup hit. Ratios are medians of per-pass ratios. Both pages hash in a Web Worker with 4 MiB reads; Uppy's preprocessors finish for the whole batch before its first transfer (that is how Uppy runs them), locker's Uploader hashes the next files while earlier ones upload.`,
      goal(ratio <= 0.85, `locker at most 0.85x Uppy's time on 20 x 16 MiB: measured ${f2(ratio)}x.`),
      goal(
        rememberedRatio <= 0.05,
        `locker's re-run at most 0.05x Uppy's re-run: measured ${f2(rememberedRatio)}x with \`rememberDigests\` (a fresh page of the same browser context, the digests remembered by an earlier run, no file read), ${f2(againRatio)}x without it (every file hashed again).`,
      ),
      `The data plane's ceiling: curl through URLs of the same kind at the same concurrency takes ${secs(m.curl)} s for the batch; locker takes ${f2(ceiling)}x that, Uppy ${f2(uppyCeiling)}x. For the 256 MiB file, locker takes ${f2(bigCeiling)}x curl's time with the same parts.`,
      "Uppy cannot send the 256 MiB file through the Worker: above 100 MB one request is too large for the Worker (and locker reserves it in parts), and @uppy/aws-s3's uploads in parts speak S3's multipart protocol (CreateMultipartUpload, UploadPart, CompleteMultipartUpload, XML answers) to the signed URLs, which the Worker's own part URLs (`PUT /v1/data/{id}/parts/{n}`) are not.",
    ],
  );
}
