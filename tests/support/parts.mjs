// Helpers of the tests of uploads in parts through the browser module and the widget: files on
// disk (so a file picked again after a "reload" is the same File, lastModified included), the
// part number of a part's PUT on either transport, what the widget's row showed, and what the
// Worker serves back.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api } from "./api.mjs";

export const MIB = 1024 * 1024;

/**
 * A file of `size` random bytes in a fresh temporary folder: `{path, name, size, sha256}`.
 * Random, so no two tests (or runs) share bytes and nothing is deduplicated by accident.
 */
export function fileOnDisk(name, size) {
  const dir = mkdtempSync(join(tmpdir(), "locker-parts-"));
  const data = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, name, size, sha256: createHash("sha256").update(data).digest("hex") };
}

/** A fresh folder for a browser profile. */
export const profileDir = () => mkdtempSync(join(tmpdir(), "locker-profile-"));

/**
 * The part number a request sends, or 0 if it is not a part's PUT: the Worker's data plane
 * (`/v1/data/{id}/parts/{n}`) or a presigned S3 UploadPart (`partNumber=n`).
 */
export function partNumber(request) {
  if (request.method() !== "PUT") return 0;
  const url = new URL(request.url());
  const viaWorker = url.pathname.match(/^\/v1\/data\/[^/]+\/parts\/(\d+)$/);
  return Number(viaWorker?.[1] ?? url.searchParams.get("partNumber") ?? 0);
}

/** Every part PUT of `target` (a page or context): `{number, bytes, url}`, in order sent. */
export function recordParts(target) {
  const seen = [];
  target.on("request", (r) => {
    const number = partNumber(r);
    if (number) seen.push({ number, bytes: r.postDataBuffer()?.length ?? 0, url: r.url() });
  });
  return seen;
}

/** The widget's token route on a whole context, answered with tokens minted by `key`. */
export async function tokenRoute(context, key) {
  await context.route("**/demo/token", async (route) => {
    const res = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
    assert.equal(res.status, 201, res.text);
    await route.fulfill({ json: res.data });
  });
}

/**
 * Records every change of the widget's rows on `page` into `window.rowLog`: `{state, value,
 * max, status}` after each mutation of a row, so a test can check what a person saw, in order.
 */
export async function watchRows(page) {
  await page.evaluate(() => {
    window.rowLog = [];
    const root = document.querySelector("locker-upload").shadowRoot;
    const snap = () => {
      for (const li of root.querySelectorAll("li")) {
        const progress = li.querySelector("progress");
        const entry = {
          state: li.dataset.state,
          value: progress.value,
          max: progress.max,
          status: li.querySelector(".status").textContent,
        };
        const last = window.rowLog.at(-1);
        if (!last || JSON.stringify(last) !== JSON.stringify(entry)) window.rowLog.push(entry);
      }
    };
    new MutationObserver(snap).observe(root, {
      subtree: true,
      attributes: true,
      childList: true,
      characterData: true,
    });
  });
}

/** Asserts the row's progress never went back while uploading (a new phase may start at 0). */
export function assertProgressNeverBack(log) {
  const uploading = log.filter((e) => e.state === "uploading");
  assert.ok(uploading.length > 0, "the row showed uploading");
  for (let i = 1; i < uploading.length; i++) {
    assert.ok(
      uploading[i].value >= uploading[i - 1].value,
      `progress went back: ${JSON.stringify(uploading.slice(i - 1, i + 1))}`,
    );
  }
}

/** Sets the widget's attributes on `page`. */
export function setAttributes(page, attributes) {
  return page.$eval(
    "locker-upload",
    (el, attributes) => {
      for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
    },
    attributes,
  );
}

/** The SHA-256 and length of the file at `demo/{path}`, as the Worker serves it back. */
export async function servedBack(key, path) {
  const meta = await api("GET", `/v1/files/demo/${path}`, { key });
  assert.equal(meta.status, 200, meta.text);
  const res = await fetch(meta.data.url);
  assert.equal(res.status, 200);
  const h = createHash("sha256");
  let length = 0;
  for await (const chunk of res.body) {
    h.update(chunk);
    length += chunk.length;
  }
  return { sha256: h.digest("hex"), length };
}

/** `GET /v1/uploads/{id}` with `key`. */
export async function uploadInfo(key, id) {
  const res = await api("GET", `/v1/uploads/${id}`, { key });
  assert.equal(res.status, 200, res.text);
  return res.data;
}

/** The upload id of the first reservation in parts answered on `target` (a page or context). */
export function reservedIds(target) {
  const ids = [];
  target.on("response", async (r) => {
    if (r.request().method() !== "POST" || !r.url().endsWith("/v1/uploads")) return;
    try {
      const body = await r.json();
      if (body.status === "multipart") ids.push(body.upload_id);
    } catch {
      // The page went away while the answer was read.
    }
  });
  return ids;
}

/**
 * Blob files of `size` bytes in local R2 under wrangler's state (`LOCKER_STATE`): every object
 * and every uploaded part is one blob file there, so the count shows whether a part was kept.
 */
export function localR2Blobs(size) {
  const root = join(process.env.LOCKER_STATE ?? "", "v3", "r2");
  let count = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.size === size) count++;
    }
  };
  walk(root);
  return count;
}

/**
 * The part files of `size` bytes s3s-fs holds for unfinished multipart uploads
 * (`.upload_id-{id}.part-{n}`), looked for in its root folder and its bucket's.
 */
export function s3PartFiles(root, bucket, size) {
  return [root, join(root, bucket)].flatMap((dir) => {
    try {
      return readdirSync(dir).filter(
        (n) => n.startsWith(".upload_id-") && n.includes(".part-") && statSync(join(dir, n)).size === size,
      );
    } catch {
      return [];
    }
  });
}
