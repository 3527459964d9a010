// `cargo xtask bench uppy`: locker's Uploader beside Uppy 6 (@uppy/core + @uppy/aws-s3), wired
// against the same Worker the way a user of locker's API would (hash-wasm in a preprocessor,
// `POST /v1/uploads` in `signRequest`, `complete` on `upload-success`), and beside curl through
// URLs of the same kind (the data plane's own ceiling at the same concurrency). Same page, same
// files, same concurrency, the `worker` transport (through the Worker into local R2); then one
// 256 MiB file in parts on the `s3` transport (presigned UploadParts straight to s3s-fs through
// the CORS pass-through), where @uppy/aws-s3's multipart mode is wired to locker's routes. A
// fresh tenant for every run, so nothing dedups across runs but the re-run rows.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as esbuild from "esbuild";
import { BASE } from "../support/env.mjs";
import { api, createKey, tenantName } from "../support/api.mjs";
import { S3_BUCKET, S3_ROOT } from "../support/s3.mjs";
import { READ_INTO, f2, median } from "./common.mjs";

const run = promisify(execFile);
const MiB = 1 << 20;
// Each pass moves 1.3 GiB through the Worker and 256 MiB five times into s3s-fs (about 1.5
// minutes here); with 3 passes the s3 ratios moved by 0.2 from run to run on this shared
// machine, so 5, as the other sections. BENCH_UPPY_PASSES takes a loaded machine down to fewer.
const PASSES = Number(process.env.BENCH_UPPY_PASSES ?? 5);
const CONCURRENCY = 3;
// The Uploader's default `partConcurrency`; curl gets the same.
const PART_CONCURRENCY = 4;
const NAMESPACE = "bench";
// Each tenant's namespace routed to the s3 bucket (s3s-fs behind the CORS pass-through).
const S3_NAMESPACE = "direct";
const TYPE = "application/octet-stream";

const secs = (xs) => `${f2(median(xs) / 1000)} (${f2(Math.min(...xs) / 1000)}-${f2(Math.max(...xs) / 1000)})`;
const secsOf = (xs) => f2(median(xs) / 1000);
const mbs = (bytes, xs) => (bytes / 1e6 / (median(xs) / 1000)).toFixed(1);
/** The part size the Worker plans for `size` bytes (`locker-core::multipart`, as README says). */
const partSizeOf = (size) => Math.max(8 * MiB, Math.ceil(Math.ceil(size / 10_000) / MiB) * MiB);

/**
 * A fresh tenant: its key (for curl) and a browser upload token for `namespace` (for both
 * pages); with `bucketId`, that namespace is routed to that bucket first.
 */
async function freshTenant(label, namespace = NAMESPACE, bucketId = undefined) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  if (bucketId) {
    const routed = await api("PUT", `/v1/routes/${namespace}`, { key, json: { bucket_id: bucketId } });
    if (routed.status !== 200) throw new Error(`route ${namespace} to the s3 bucket: ${routed.text}`);
  }
  const token = await api("POST", "/v1/tokens", { key, json: { namespace, ttl: 3600 } });
  if (token.status !== 201 && token.status !== 200) throw new Error(`mint a token: ${token.text}`);
  return { tenant, key, token: token.data.token };
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
  // This script itself: the CORS pass-through in front of s3s-fs runs in it.
  const own = process.cpuUsage();
  const out = new Map([["bench node/self", (own.user + own.system) / 1e6]]);
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

/**
 * The big file in parts with curl: reserve, every part URL in one request, the PUTs
 * `concurrency` at a time, complete. Through the Worker, or (`namespace` routed to the s3
 * bucket) straight to s3s-fs through the CORS pass-through, as the browser's parts go.
 */
async function curlInParts(key, file, parts, { namespace = NAMESPACE, concurrency = PART_CONCURRENCY } = {}) {
  const r = await api("POST", "/v1/uploads", {
    key,
    json: { namespace, path: `curl/${file.name}`, sha256: file.sha256, size: file.size, content_type: TYPE },
  });
  if (r.status !== 201 || r.data.status !== "multipart") throw new Error(`reserve in parts: ${r.text}`);
  if (r.data.part_size !== partSizeOf(file.size) || r.data.part_count !== parts.length)
    throw new Error(`the plan is not the parts cut here: ${r.text}`);
  const urls = await api("POST", `/v1/uploads/${r.data.upload_id}/parts`, {
    key,
    json: { parts: parts.map((p) => ({ number: p.number, sha256: p.sha256 })) },
  });
  if (urls.status !== 200) throw new Error(`part URLs: ${urls.text}`);
  const byNumber = new Map(urls.data.parts.map((p) => [p.number, p]));
  await pool(parts, concurrency, (p) => curlPut(byNumber.get(p.number).url, byNumber.get(p.number).headers, p.path));
  const c = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  if (c.status !== 200) throw new Error(`complete in parts: ${c.text}`);
  committed(c.data, file, `curl/${file.name}`, namespace);
}

/**
 * The `uppy` section. `page` is bench.mjs's page (the Worker's origin, `locker` and
 * `hashWasmFile` loaded); `writeFile` writes a distinct input file; `section` and `table` print.
 */
export async function uppyBench({ page, writeFile, section, table, goal, s3BucketId }) {
  const batch = Array.from({ length: 20 }, (_, i) => writeFile(`uppy-${i}.bin`, 16 * MiB, `uppy-${i}-${Date.now()}`));
  const big = writeFile("uppy-big.bin", 256 * MiB, `uppy-big-${Date.now()}`);
  const bigParts = splitParts(big, partSizeOf(big.size));

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
    ({ endpoint, namespace, type, hashWasm, readIntoSource }) => {
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

      // Uppy 6 in parts (@uppy/aws-s3's multipart mode) against locker's API on the s3
      // transport. @uppy/aws-s3 6 has no createMultipartUpload/signPart/listParts/complete/abort
      // hooks any more (removed in 6.0): one `signRequest` signs every S3 request, and Uppy
      // sends it to the URL answered and reads S3's XML answer. So each request of the upload
      // is mapped onto locker's route for it: CreateMultipartUpload reserves (`multipart:
      // true`, the digest from the same hash-wasm preprocessor), UploadPart hashes that part's
      // bytes and asks its URL (a presigned S3 UploadPart, which Uppy PUTs to s3s-fs itself),
      // CompleteMultipartUpload completes, ListParts reads the reservation, Abort deletes it.
      // locker answers JSON where Uppy expects S3's XML for the create, complete, list and
      // abort, so those four are answered to Uppy as `data:` URLs holding the XML (Uppy sends
      // its request there and reads it back; no bytes leave the page), after locker's own
      // route has been called. Uppy's part size is locker's plan (a function of the size
      // alone, so known before the reservation); `limit` is files at once, while one file's
      // parts go one after another (S3Uploader sends them in a loop: no part concurrency).
      // With `ahead`, the signer is the better-informed one: the preprocessor's one read of the
      // file hashes each part too (a second hasher, as locker's Uploader does), and every part
      // URL is asked right after the reservation, so an UploadPart's signRequest only looks up.
      const partsWorker = URL.createObjectURL(
        new Blob(
          [
            `${hashWasm}
            ${readIntoSource}
            onmessage = async (e) => {
              const { file, partSize } = e.data;
              const whole = await hashwasm.createSHA256();
              const part = await hashwasm.createSHA256();
              whole.init();
              part.init();
              const parts = [];
              let inPart = 0;
              await readInto(file, (value) => {
                whole.update(value);
                for (let at = 0; at < value.length; ) {
                  const n = Math.min(value.length - at, partSize - inPart);
                  part.update(value.subarray(at, at + n));
                  at += n;
                  inPart += n;
                  if (inPart === partSize) {
                    parts.push(part.digest("hex"));
                    part.init();
                    inPart = 0;
                  }
                }
              });
              if (inPart > 0) parts.push(part.digest("hex"));
              postMessage({ sha256: whole.digest("hex"), parts });
            };`,
          ],
          { type: "text/javascript" },
        ),
      );
      // The file's SHA-256 and each part's, in one read (4 MiB BYOB reads, as hashWasmFile).
      const hashWasmWithParts = (file, partSize) =>
        new Promise((resolve, reject) => {
          const w = new Worker(partsWorker);
          w.onmessage = (e) => {
            w.terminate();
            resolve(e.data);
          };
          w.onerror = (e) => {
            w.terminate();
            reject(new Error(e.message));
          };
          w.postMessage({ file, partSize });
        });

      window.uppyParts = async (name, token, where, limit, ahead = false) => {
        const partSizeOf = (size) => Math.max(8 << 20, Math.ceil(Math.ceil(size / 10_000) / (1 << 20)) * (1 << 20));
        const xml = (body) => ({ url: `data:application/xml,${encodeURIComponent(body)}` });
        const esc = (v) => String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
        const uppy = new window.Uppy({ autoProceed: false });
        const plans = new Map();
        let committed = null;
        let partRequests = 0;
        // Time inside signRequest for the parts (cut, hash, ask the URL): nothing is sent meanwhile.
        let partSignMs = 0;
        const partDigests = new Map();
        uppy.addPreProcessor(async (ids) => {
          for (const id of ids) {
            const f = uppy.getFile(id);
            if (ahead) {
              const { sha256, parts } = await hashWasmWithParts(f.data, partSizeOf(f.size));
              partDigests.set(id, parts);
              uppy.setFileMeta(id, { sha256 });
            } else uppy.setFileMeta(id, { sha256: await window.hashWasmFile(f.data) });
          }
        });
        uppy.use(window.AwsS3, {
          limit,
          shouldUseMultipart: true,
          getChunkSize: (f) => partSizeOf(f.size),
          allowedMetaFields: false,
          generateObjectKey: (f) => f.id,
          async signRequest(request) {
            const { method, key, uploadId } = request;
            if (method === "POST" && uploadId === undefined) {
              // CreateMultipartUpload: reserve in parts.
              const f = uppy.getFile(key);
              const r = await json("POST", "/v1/uploads", token, {
                namespace: where,
                path: `uppy/${f.name}`,
                sha256: f.meta.sha256,
                size: f.size,
                content_type: f.type,
                multipart: true,
              });
              if (r.status !== "multipart") throw new Error(`reserved as ${r.status}, not in parts`);
              if (r.part_size !== partSizeOf(f.size)) throw new Error(`locker plans parts of ${r.part_size} bytes`);
              const urls = new Map();
              if (ahead) {
                const digests = partDigests.get(f.id).map((sha256, i) => ({ number: i + 1, sha256 }));
                for (let i = 0; i < digests.length; i += r.max_parts_per_request) {
                  partRequests += 1;
                  const asked = await json("POST", `/v1/uploads/${r.upload_id}/parts`, token, {
                    parts: digests.slice(i, i + r.max_parts_per_request),
                  });
                  for (const p of asked.parts) urls.set(p.number, p);
                }
              }
              plans.set(r.upload_id, { data: f.data, plan: r, urls });
              return xml(
                `<InitiateMultipartUploadResult><Key>${esc(key)}</Key><UploadId>${esc(r.upload_id)}</UploadId></InitiateMultipartUploadResult>`,
              );
            }
            const { data, plan, urls } = plans.get(uploadId);
            if (method === "PUT" && ahead) {
              const p = urls.get(request.partNumber);
              return { url: p.url, headers: p.headers };
            }
            if (method === "PUT") {
              // UploadPart: the part URL binds the part's SHA-256, and Uppy's request carries
              // no body, so the signer cuts the part from the file by the plan and hashes it.
              const started = performance.now();
              const at = (request.partNumber - 1) * plan.part_size;
              const bytes = new Uint8Array(await data.slice(at, at + plan.part_size).arrayBuffer());
              const sha256 = await window.hashwasm.sha256(bytes);
              partRequests += 1;
              const r = await json("POST", `/v1/uploads/${uploadId}/parts`, token, {
                parts: [{ number: request.partNumber, sha256 }],
              });
              partSignMs += performance.now() - started;
              return { url: r.parts[0].url, headers: r.parts[0].headers };
            }
            if (method === "POST") {
              // CompleteMultipartUpload (Uppy's part list unused: the Worker lists the parts itself).
              committed = await json("POST", `/v1/uploads/${uploadId}/complete`, token);
              return xml(
                `<CompleteMultipartUploadResult><Location>${esc(committed.ref)}</Location><Key>${esc(key)}</Key></CompleteMultipartUploadResult>`,
              );
            }
            if (method === "GET") {
              // ListParts (a resumed upload): the parts locker says storage holds. locker does
              // not answer their ETags, which Uppy only hands back to the complete it does not
              // send; the declared digest stands in.
              const info = await json("GET", `/v1/uploads/${uploadId}`, token);
              const parts = (info.multipart?.parts ?? []).map(
                (p) => `<Part><PartNumber>${p.number}</PartNumber><ETag>"${esc(p.sha256)}"</ETag></Part>`,
              );
              return xml(`<ListPartsResult>${parts.join("")}</ListPartsResult>`);
            }
            if (method === "DELETE") {
              // AbortMultipartUpload: an empty answer is S3's success to Uppy.
              await json("DELETE", `/v1/uploads/${uploadId}`, token);
              return { url: "data:application/xml," };
            }
            throw new Error(`no locker route for ${method} ${JSON.stringify(request)}`);
          },
        });
        let firstByte = null;
        uppy.on("upload-progress", () => {
          firstByte ??= performance.now();
        });
        uppy.addFile({ name, type, data: file(name), source: "bench" });
        const t = performance.now();
        const result = await uppy.upload();
        const total = performance.now() - t;
        const failed = result?.failed ?? [];
        uppy.destroy();
        if (failed.length || !committed) throw new Error(`uppy in parts: ${failed.map((f) => f.error).join("; ")}`);
        return { total, firstByte: (firstByte ?? t) - t, committed, partRequests, partSignMs };
      };
    },
    {
      endpoint: BASE,
      namespace: NAMESPACE,
      type: TYPE,
      hashWasm: readFileSync("node_modules/hash-wasm/dist/sha256.umd.min.js", "utf8"),
      readIntoSource: READ_INTO,
    },
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
  // Once, untimed: the same Uppy wiring in parts on the worker transport, to say why it has no row.
  const probe = await freshTenant("uppy-worker-parts");
  const workerParts = await page
    .evaluate(([n, t, w, l]) => window.uppyParts(n, t, w, l), [big.name, probe.token, NAMESPACE, PART_CONCURRENCY])
    .then(
      () => "it went through",
      // Its first line: what Uppy says, without the page's stack.
      (e) => e.message.replace(/^.*uppy in parts: /s, "").split("\n")[0],
    );
  const s3Big = {
    ms: { locker: [], uppy: [], uppyAhead: [], curl: [], curl1: [] },
    first: { locker: [], uppy: [], uppyAhead: [] },
    partSign: [],
  };
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

    // The same 256 MiB file on the s3 transport, each side in a fresh tenant whose namespace
    // goes to s3s-fs: the Uploader, Uppy in parts, curl at the Uploader's part concurrency and
    // at Uppy's one part at a time; the order turns by one every pass. Timed from the upload
    // call to the committed complete, hashing included (curl's digests are known beforehand).
    const tenants = {};
    for (const side of Object.keys(s3Big.ms))
      tenants[side] = await freshTenant(`uppy-s3-${side.toLowerCase()}`, S3_NAMESPACE, s3BucketId);
    const sides = {
      locker: async () => {
        const r = await page.evaluate(
          ([n, t, c, w]) => window.lockerBatch(n, t, c, w),
          [[big.name], tenants.locker.token, CONCURRENCY, S3_NAMESPACE],
        );
        if (r.dedup !== 0) throw new Error("256 MiB on s3: the Uploader deduplicated");
        committed(r.results[0], big, big.name, S3_NAMESPACE);
        return r;
      },
      uppy: async () => {
        const r = await page.evaluate(
          ([n, t, w, l]) => window.uppyParts(n, t, w, l),
          [big.name, tenants.uppy.token, S3_NAMESPACE, PART_CONCURRENCY],
        );
        committed(r.committed, big, `uppy/${big.name}`, S3_NAMESPACE);
        if (r.partRequests !== bigParts.length) throw new Error(`uppy signed ${r.partRequests} parts`);
        return r;
      },
      uppyAhead: async () => {
        const r = await page.evaluate(
          ([n, t, w, l]) => window.uppyParts(n, t, w, l, true),
          [big.name, tenants.uppyAhead.token, S3_NAMESPACE, PART_CONCURRENCY],
        );
        committed(r.committed, big, `uppy/${big.name}`, S3_NAMESPACE);
        if (r.partRequests !== 1) throw new Error(`uppy (ahead) asked part URLs ${r.partRequests} times`);
        return r;
      },
      curl: () => curlInParts(tenants.curl.key, big, bigParts, { namespace: S3_NAMESPACE }),
      curl1: () => curlInParts(tenants.curl1.key, big, bigParts, { namespace: S3_NAMESPACE, concurrency: 1 }),
    };
    const order = Object.keys(sides);
    for (let i = 0; i < order.length; i += 1) {
      const side = order[(pass + i) % order.length];
      const out = await timedRun(`${side} 256 s3`, sides[side]);
      s3Big.ms[side].push(out.total ?? out.ms);
      if (out.firstByte !== undefined) s3Big.first[side].push(out.firstByte);
      if (side === "uppy") s3Big.partSign.push(out.partSignMs);
      // The bytes are in s3s-fs (not in the Worker's R2), as many as node wrote.
      const object = join(S3_ROOT, S3_BUCKET, `t/${tenants[side].tenant}/sha256/${big.sha256}`);
      if (!existsSync(object) || statSync(object).size !== big.size)
        throw new Error(`256 MiB on s3 (${side}): no object of ${big.size} bytes at ${object}`);
    }
  }

  const ratio = median(m.locker.map((x, i) => x / m.uppy[i]));
  const againRatio = median(m.lockerAgain.map((x, i) => x / m.uppyAgain[i]));
  const rememberedRatio = median(m.lockerRemembered.map((x, i) => x / m.uppyAgain[i]));
  const ceiling = median(m.locker.map((x, i) => x / m.curl[i]));
  const uppyCeiling = median(m.uppy.map((x, i) => x / m.curl[i]));
  const bigCeiling = median(big1.locker.map((x, i) => x / big1.curl[i]));
  const perPass = (a, b) => median(a.map((x, i) => x / b[i]));
  // The goal is judged against the faster of the two Uppy wirings in each pass.
  const s3UppyBest = s3Big.ms.uppy.map((x, i) => Math.min(x, s3Big.ms.uppyAhead[i]));
  const s3Ratio = perPass(s3Big.ms.locker, s3UppyBest);
  const s3Ratios = s3Big.ms.locker.map((x, i) => f2(x / s3UppyBest[i])).join(", ");
  const s3PlainRatio = perPass(s3Big.ms.locker, s3Big.ms.uppy);
  const s3AheadRatio = perPass(s3Big.ms.locker, s3Big.ms.uppyAhead);
  const s3Ceiling = perPass(s3Big.ms.locker, s3Big.ms.curl);
  const s3UppyCeiling = perPass(s3Big.ms.uppy, s3Big.ms.curl1);
  const s3AheadCeiling = perPass(s3Big.ms.uppyAhead, s3Big.ms.curl1);
  const curl1to4 = perPass(s3Big.ms.curl1, s3Big.ms.curl);
  const sending = (side) => secsOf(s3Big.ms[side].map((x, i) => x - s3Big.first[side][i]));
  const s3PartSize = partSizeOf(big.size) / MiB;
  section(
    "9. Against Uppy 6 in the same page (the `worker` transport into local R2; one file in parts on the `s3` transport into s3s-fs)",
    [
      table(
        [
          `20 files of 16 MiB, ${CONCURRENCY} at a time, \`worker\` transport (through the Worker into local R2)`,
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
        [
          "one file of 256 MiB, `worker` transport (through the Worker into local R2)",
          "seconds, median (min-max)",
          "MB/s",
        ],
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
          "one file of 256 MiB, `s3` transport (presigned UploadParts straight to s3s-fs through the CORS pass-through)",
          "seconds, median (min-max)",
          "MB/s",
          "first byte sent after, s",
          "first byte to committed, s",
        ],
        [
          [
            `locker \`Uploader\` (hash, then ${s3PartSize} MiB parts, ${PART_CONCURRENCY} at a time)`,
            secs(s3Big.ms.locker),
            mbs(big.size, s3Big.ms.locker),
            f2(median(s3Big.first.locker) / 1000),
            sending("locker"),
          ],
          [
            `Uppy 6 + @uppy/aws-s3 in parts, each part hashed and its URL asked in \`signRequest\` (hash-wasm preprocessor for the file; ${s3PartSize} MiB parts, one at a time)`,
            secs(s3Big.ms.uppy),
            mbs(big.size, s3Big.ms.uppy),
            secsOf(s3Big.first.uppy),
            sending("uppy"),
          ],
          [
            "Uppy 6 + @uppy/aws-s3 in parts, every part hashed in the preprocessor's one read and every URL asked after the reservation (the same parts, one at a time)",
            secs(s3Big.ms.uppyAhead),
            mbs(big.size, s3Big.ms.uppyAhead),
            secsOf(s3Big.first.uppyAhead),
            sending("uppyAhead"),
          ],
          [
            `curl: the same parts, ${PART_CONCURRENCY} at a time, then complete (no hashing: the digests are known)`,
            secs(s3Big.ms.curl),
            mbs(big.size, s3Big.ms.curl),
            "-",
            "-",
          ],
          [
            "curl: the same parts, 1 at a time (Uppy's part concurrency)",
            secs(s3Big.ms.curl1),
            mbs(big.size, s3Big.ms.curl1),
            "-",
            "-",
          ],
          [
            "**ratio** locker / the faster Uppy of each pass (median of per-pass ratios)",
            `**${f2(s3Ratio)}x**`,
            "",
            "",
            "",
          ],
        ],
      ),
      "",
      table(
        [
          "CPU while it ran (cores busy, median of passes)",
          "workerd (all)",
          "busiest workerd thread",
          "wrangler's node",
          "s3s-fs",
          "bench script (CORS pass-through)",
          "Chromium (the page)",
        ],
        Object.entries(cpu).map(([label, uses]) => [
          label,
          f2(median(uses.map((u) => u.byKind.get("stack workerd") ?? 0))),
          f2(median(uses.map((u) => u.busiest.share))),
          f2(median(uses.map((u) => u.byKind.get("stack node") ?? 0))),
          f2(median(uses.map((u) => u.byKind.get("stack s3s-fs") ?? 0))),
          f2(median(uses.map((u) => u.byKind.get("bench node") ?? 0))),
          f2(
            median(
              uses.map((u) => [...u.byKind].filter(([k]) => k.startsWith("page ")).reduce((x, [, v]) => x + v, 0)),
            ),
          ),
        ]),
      ),
    ].join("\n"),
    [
      `${PASSES} passes, interleaved (locker, Uppy, curl, then the re-runs: locker and Uppy in the same page, then locker with \`rememberDigests\` twice on fresh pages of the same browser context, the second measured; then the 256 MiB file through the Worker, then on the s3 transport), each side in a fresh tenant every pass; the re-runs send the same files again in the same tenant, so every file is a dedup hit. Ratios are medians of per-pass ratios. Both pages hash in a Web Worker with 4 MiB reads; Uppy's preprocessors finish for the whole batch before its first transfer (that is how Uppy runs them), locker's Uploader hashes the next files while earlier ones upload.`,
      goal(ratio <= 0.85, `locker at most 0.85x Uppy's time on 20 x 16 MiB: measured ${f2(ratio)}x.`),
      goal(
        rememberedRatio <= 0.05,
        `locker's re-run at most 0.05x Uppy's re-run: measured ${f2(rememberedRatio)}x with \`rememberDigests\` (a fresh page of the same browser context, the digests remembered by an earlier run, no file read), ${f2(againRatio)}x without it (every file hashed again).`,
      ),
      `The data plane's ceiling: curl through URLs of the same kind at the same concurrency takes ${secs(m.curl)} s for the batch; locker takes ${f2(ceiling)}x that, Uppy ${f2(uppyCeiling)}x. For the 256 MiB file through the Worker, locker takes ${f2(bigCeiling)}x curl's time with the same parts.`,
      `Uppy has no row for the 256 MiB file on the worker transport: one request is capped at 100 MB there, and in parts (the wiring below, tried once on a namespace of the Worker's R2) @uppy/aws-s3 fails at the first part: "${workerParts}". The Worker's part PUT answers JSON without the \`ETag\` header Uppy requires of an UploadPart.`,
      goal(
        s3Ratio <= 0.85,
        `locker at most 0.85x Uppy's time on one 256 MiB file in parts (s3 transport, from the upload call to the committed complete, hashing included on both sides), against the faster of the two Uppy wirings in each pass: measured ${f2(s3Ratio)}x (per pass ${s3Ratios}); ${f2(s3PlainRatio)}x the wiring that hashes each part in \`signRequest\`, ${f2(s3AheadRatio)}x the one that hashes the parts in the preprocessor.`,
      ),
      `On the s3 transport, ${PASSES} passes of five runs (locker, the two Uppy wirings, curl at ${PART_CONCURRENCY}, curl at 1) in an order that turns by one every pass, each run in a fresh tenant whose namespace \`${S3_NAMESPACE}\` is routed (\`PUT /v1/routes/${S3_NAMESPACE}\`) to the s3 bucket (s3s-fs behind the CORS pass-through, which this script runs); every run's complete answered node's SHA-256 and size, and the object is in s3s-fs with node's size. The ceiling: locker takes ${f2(s3Ceiling)}x curl's time at ${PART_CONCURRENCY} parts at a time; Uppy ${f2(s3UppyCeiling)}x and ${f2(s3AheadCeiling)}x (the two wirings) curl's at 1 part at a time; curl at 1 takes ${f2(curl1to4)}x its time at ${PART_CONCURRENCY}. In the first wiring ${secsOf(s3Big.partSign)} s (median) of Uppy's time is spent in \`signRequest\` for the parts (cutting, hashing, asking each URL), when nothing is sent: the next part waits for it.`,
      `How Uppy is wired (\`uppyParts\` in tests/bench/uppy-bench.mjs): @uppy/aws-s3 6 dropped the createMultipartUpload / signPart / listParts / completeMultipartUpload / abortMultipartUpload hooks of 5.x; its one \`signRequest\` signs each S3 request, and Uppy sends that request to the URL answered and parses S3's XML. Each request is mapped onto locker's route for it: CreateMultipartUpload -> \`POST /v1/uploads\` with \`multipart: true\` and the preprocessor's digest; UploadPart -> that part cut from the file by the plan, hashed with hash-wasm and \`POST /v1/uploads/{id}/parts\` for its number, answering the presigned UploadPart URL and its \`x-amz-checksum-sha256\` header, which Uppy PUTs to s3s-fs itself; CompleteMultipartUpload -> \`POST /v1/uploads/{id}/complete\`; ListParts -> \`GET /v1/uploads/{id}\`; Abort -> \`DELETE /v1/uploads/{id}\`. \`getChunkSize\` is locker's plan (${s3PartSize} MiB here; a function of the size alone, so known before the reservation, which checks it), \`limit\` ${PART_CONCURRENCY}. The second wiring differs only in where the parts' digests and URLs come from: the preprocessor hashes each part with a second hash-wasm hasher during its one read of the file (as locker's Uploader hashes parts while it hashes the file), and the create asks every part URL (${Math.ceil(bigParts.length / 100)} request) right after the reservation, so an UploadPart's \`signRequest\` only looks its URL up.`,
      `What in locker's API makes that wiring awkward: (1) locker presigns only UploadPart; it creates the S3 upload at the reservation and combines and verifies it at complete, and its routes answer JSON, so create, complete, list and abort have no S3 URL to hand Uppy: the signer calls locker's route and answers a \`data:\` URL holding the XML Uppy expects (Uppy sends its request there and reads it back; nothing leaves the page), which works but is not a documented use of \`signRequest\`. (2) A part URL binds the part's SHA-256 and Uppy's \`signRequest\` gets no part bytes, so a signer either cuts the part from the file by the plan and hashes it before asking its URL (the first wiring: the file read twice, one parts request per part, all of it between two parts' sends), or hashes every part ahead in the preprocessor (the second: Uppy's preprocessor does locker's work of one read with two hashers before anything is sent). (3) \`GET /v1/uploads/{id}\` lists no ETags, which Uppy's ListParts wants (the declared digest stands in; locker's complete lists the parts itself). Not locker's: @uppy/aws-s3 6 sends one file's parts one after another (\`limit\` counts files), so its part concurrency is 1 against the Uploader's ${PART_CONCURRENCY}; the curl row at 1 shows what the data plane does at that concurrency.`,
    ],
  );
}
