// `cargo xtask bench many`: 1,000 small files (4-64 KB of random bytes) through the real
// Uploader in Chromium (hash + reserve + upload + complete, reserves and completes gathered into
// the batch routes) beside curl doing the same 1,000 PUTs at the same concurrency (reservations
// made before and completes after, untimed: curl's row is the data plane alone). The `worker`
// transport of the bench's wrangler dev; a fresh tenant per run, so only the re-run dedups.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { BASE } from "../support/env.mjs";
import { api, createKey, tenantName } from "../support/api.mjs";
import { f2 } from "./common.mjs";

const run = promisify(execFile);
const FILES = 1000;
// The Uploader's default `concurrency` (transfers at once), used for curl too.
const CONCURRENCY = 3;
const NAMESPACE = "bench";
const TYPE = "application/octet-stream";
const DIR = "target/bench/many";

/** The 1,000 files on disk: 4 to 64 KB each, random bytes. */
function writeFiles() {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  return Array.from({ length: FILES }, (_, i) => {
    const size = 4096 + Math.floor(Math.random() * (65536 - 4096 + 1));
    const data = randomBytes(size);
    const name = `many-${i}.bin`;
    const path = join(DIR, name);
    writeFileSync(path, data);
    return { name, path, size, sha256: createHash("sha256").update(data).digest("hex") };
  });
}

async function freshTenant(label) {
  const { key } = await createKey(tenantName(label));
  const token = await api("POST", "/v1/tokens", { key, json: { namespace: NAMESPACE, ttl: 3600 } });
  if (token.status !== 201) throw new Error(`mint a token: ${token.text}`);
  return { key, token: token.data.token };
}

/** `items` in chunks of `n`. */
const chunks = (items, n) =>
  Array.from({ length: Math.ceil(items.length / n) }, (_, i) => items.slice(i * n, i * n + n));

/** curl: reserve all (untimed), the 1,000 PUTs with `--parallel-max N` (timed), complete all (untimed). */
async function curlRun(key, files) {
  const plans = [];
  for (const group of chunks(files, 100)) {
    const r = await api("POST", "/v1/uploads:batch", {
      key,
      json: {
        uploads: group.map((f) => ({
          namespace: NAMESPACE,
          path: `curl/${f.name}`,
          sha256: f.sha256,
          size: f.size,
          content_type: TYPE,
        })),
      },
    });
    if (r.status !== 200) throw new Error(`reserve for curl: ${r.text}`);
    for (const item of r.data.results) {
      if (item.status !== "upload") throw new Error(`reserve for curl: ${JSON.stringify(item)}`);
      plans.push(item);
    }
  }
  const q = (s) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  const config = plans
    .map((p, i) =>
      [
        ...(i > 0 ? ["next"] : []),
        `url = ${q(p.url)}`,
        `upload-file = ${q(files[i].path)}`,
        ...Object.entries(p.headers ?? {}).map(([k, v]) => `header = ${q(`${k}: ${v}`)}`),
        "output = /dev/null",
        `write-out = "%{http_code}\\n"`,
      ].join("\n"),
    )
    .join("\n");
  const configPath = join(DIR, "curl.config");
  writeFileSync(configPath, config);
  const t = performance.now();
  const { stdout } = await run("curl", ["-sS", "--parallel", "--parallel-max", String(CONCURRENCY), "-K", configPath], {
    maxBuffer: 1 << 24,
  });
  const ms = performance.now() - t;
  const codes = stdout.trim().split("\n");
  if (codes.length !== files.length || !codes.every((c) => c.startsWith("2")))
    throw new Error(`curl PUTs answered ${[...new Set(codes)]}`);
  for (const group of chunks(plans, 100)) {
    const c = await api("POST", "/v1/uploads:complete", { key, json: { upload_ids: group.map((p) => p.upload_id) } });
    if (c.status === 404 || c.status === 405) {
      for (const p of group) {
        const one = await api("POST", `/v1/uploads/${p.upload_id}/complete`, { key });
        if (one.status !== 200) throw new Error(`complete after curl: ${one.text}`);
      }
    } else if (c.status !== 200 || !c.data.results.every((r) => r.status === "complete")) {
      throw new Error(`complete after curl: ${c.text}`);
    }
  }
  return ms;
}

export async function manySection({ page, section, table, goal }) {
  const files = writeFiles();
  await page.evaluate(() => {
    const input = Object.assign(document.createElement("input"), { type: "file", id: "many-files", multiple: true });
    document.body.append(input);
  });
  await page.setInputFiles(
    "#many-files",
    files.map((f) => f.path),
  );
  const counts = { reserve: 0, complete: 0 };
  page.on("request", (r) => {
    if (r.method() !== "POST") return;
    const path = new URL(r.url()).pathname;
    if (path === "/v1/uploads" || path === "/v1/uploads:batch") counts.reserve += 1;
    else if (path === "/v1/uploads:complete" || path.endsWith("/complete")) counts.complete += 1;
  });
  // One Uploader per run, every file given to it at once (as the widget does with a drop), timed
  // from the files in hand to the last one stored.
  const locker = (token, prefix) =>
    page.evaluate(
      async ({ endpoint, token, namespace, prefix }) => {
        const up = new window.locker.Uploader({ endpoint, token, namespace, resume: false });
        const picked = [...document.getElementById("many-files").files];
        const t = performance.now();
        const results = await Promise.all(picked.map((f) => up.upload(f, { path: `${prefix}/${f.name}` })));
        return {
          ms: performance.now() - t,
          dedup: results.filter((r) => r.deduplicated).length,
          digests: results.map((r) => r.sha256),
        };
      },
      { endpoint: BASE, token, namespace: NAMESPACE, prefix },
    );

  const rows = [];
  const tenant = await freshTenant("many");
  const before = { ...counts };
  const first = await locker(tenant.token, "first");
  const firstCounts = { reserve: counts.reserve - before.reserve, complete: counts.complete - before.complete };
  if (first.digests.some((d, i) => d !== files[i].sha256)) throw new Error("a digest differs from node's");
  const middle = { ...counts };
  const rerun = await locker(tenant.token, "rerun");
  const rerunCounts = { reserve: counts.reserve - middle.reserve, complete: counts.complete - middle.complete };
  if (rerun.dedup !== FILES) throw new Error(`re-run: ${rerun.dedup} of ${FILES} deduplicated`);
  const curlMs = await curlRun((await freshTenant("many-curl")).key, files);
  const ratio = first.ms / curlMs;
  const bytes = files.reduce((n, f) => n + f.size, 0);
  rows.push(
    [
      "locker Uploader (hash + reserve + PUT + complete)",
      f2(first.ms / 1000),
      f2(ratio),
      String(firstCounts.reserve),
      String(firstCounts.complete),
    ],
    [
      "locker Uploader, re-run (all dedup)",
      f2(rerun.ms / 1000),
      f2(rerun.ms / curlMs),
      String(rerunCounts.reserve),
      String(rerunCounts.complete),
    ],
    [
      `curl --parallel --parallel-max ${CONCURRENCY}, the PUTs only`,
      f2(curlMs / 1000),
      "1.00",
      "(untimed)",
      "(untimed)",
    ],
  );
  section(
    "10. Many small files: 1,000 files of 4-64 KB",
    table(["run", "seconds", "x curl", "reserve requests", "complete requests"], rows),
    [
      `${FILES} files of random bytes, ${f2(bytes / 1e6)} MB in all, transport \`worker\` (through the Worker into local R2), concurrency ${CONCURRENCY} (the Uploader's default) for both. The Uploader gets every file at once (one \`upload()\` each, as the widget does with a drop) and is timed from the files in hand to the last one stored; reserves go in \`POST /v1/uploads:batch\` and completes in \`POST /v1/uploads:complete\` requests gathered while one is in flight. curl reserves every file first and completes after, untimed; only its PUTs are timed.`,
      goal(ratio <= 2, `within 2x of curl: ${f2(ratio)}x.`),
    ],
  );
}
