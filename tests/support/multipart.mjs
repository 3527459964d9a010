// Helpers of the multipart tests: deterministic file contents of any size without holding the
// file in memory, the part plan as the client computes it, and the calls of an upload in parts.
import { createCipheriv, createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { api } from "./api.mjs";

export const MIB = 1024 * 1024;

/**
 * The part size for a file of `size` bytes, as locker-core's `multipart::part_size` computes
 * it: max(8 MiB, ceil(size / 10,000)) rounded up to a whole MiB. The tests compare it with
 * the Worker's plan, so a change on one side only is caught.
 */
export function partSize(size) {
  const spread = Math.ceil(size / 10_000);
  return Math.max(8 * MIB, Math.ceil(spread / MIB) * MIB);
}

/**
 * A file of `size` bytes named by `seed`: the AES-128-CTR keystream of a key derived from the
 * seed, so any range can be made on its own (parts are made when sent, never all at once) and
 * every seed's bytes are their own (no dedup between tests).
 */
export class SyntheticFile {
  constructor(seed, size) {
    this.seed = seed;
    this.size = size;
    this.key = createHash("sha256").update(`locker-multipart-${seed}`).digest().subarray(0, 16);
  }

  /** Bytes `[start, start + length)`; `start` is a multiple of 16 (parts are whole MiB). */
  range(start, length) {
    assert.equal(start % 16, 0);
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(start / 16), 8);
    const cipher = createCipheriv("aes-128-ctr", this.key, iv);
    return cipher.update(Buffer.alloc(length));
  }

  /** The SHA-256 (hex) of the whole file, computed in 8 MiB steps. */
  sha256() {
    if (!this.digest) {
      const h = createHash("sha256");
      for (let at = 0; at < this.size; at += 8 * MIB) {
        h.update(this.range(at, Math.min(8 * MIB, this.size - at)));
      }
      this.digest = h.digest("hex");
    }
    return this.digest;
  }

  /** Part `number` (from 1) of a plan with `partSize`-byte parts. */
  part(number, size) {
    const start = (number - 1) * size;
    return this.range(start, Math.min(size, this.size - start));
  }
}

export const sha256hex = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** `POST /v1/uploads` of `file` at `namespace/path`; `multipart` unless `fields` say otherwise. */
export function reserveFile(key, file, { namespace = "corp", path, ...fields }) {
  return api("POST", "/v1/uploads", {
    key,
    json: {
      namespace,
      path,
      sha256: file.sha256(),
      size: file.size,
      content_type: "application/octet-stream",
      multipart: true,
      ...fields,
    },
  });
}

/** `POST /v1/uploads/{id}/parts` for parts `numbers` of `file`, with their real digests. */
export function askParts(key, plan, file, numbers, digests = {}) {
  return api("POST", `/v1/uploads/${plan.upload_id}/parts`, {
    key,
    json: {
      parts: numbers.map((number) => ({
        number,
        sha256: digests[number] ?? sha256hex(file.part(number, plan.part_size)),
      })),
    },
  });
}

/** Sends one part with its signed URL; `body` replaces the part's bytes. */
export function sendPart(url, body) {
  return api(url.method, url.url, { body, headers: url.headers });
}

/**
 * Uploads parts `numbers` (default: all) of `file` per `plan`: URLs asked in batches of at most
 * `max_parts_per_request`, `concurrency` parts in flight, each made when sent. Asserts every
 * part was stored (201).
 */
export async function sendParts(key, plan, file, { numbers, concurrency = 6 } = {}) {
  const all = numbers ?? Array.from({ length: plan.part_count }, (_, i) => i + 1);
  const urls = [];
  for (let i = 0; i < all.length; i += plan.max_parts_per_request) {
    const batch = all.slice(i, i + plan.max_parts_per_request);
    const res = await askParts(key, plan, file, batch);
    assert.equal(res.status, 200, res.text);
    urls.push(...res.data.parts);
  }
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const url = urls[next++];
      const res = await sendPart(url, file.part(url.number, plan.part_size));
      assert.ok(res.status === 200 || res.status === 201, `part ${url.number}: ${res.status} ${res.text}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return urls;
}

/** Reserve in parts, send every part, complete. Returns the answers. */
export async function uploadFile(key, file, where) {
  const reserved = await reserveFile(key, file, where);
  assert.equal(reserved.status, 201, reserved.text);
  assert.equal(reserved.data.status, "multipart", reserved.text);
  const plan = reserved.data;
  await sendParts(key, plan, file);
  const complete = await api("POST", `/v1/uploads/${plan.upload_id}/complete`, { key });
  return { plan, complete };
}

/** The SHA-256 (hex) and length of what a download URL serves, streamed. */
export async function downloaded(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const h = createHash("sha256");
  let length = 0;
  for await (const chunk of res.body) {
    h.update(chunk);
    length += chunk.length;
  }
  return { sha256: h.digest("hex"), length };
}

/** `GET /v1/uploads/{id}`. */
export function uploadInfo(key, id) {
  return api("GET", `/v1/uploads/${id}`, { key });
}

/**
 * Blob files of the local R2 under wrangler's state (`LOCKER_STATE`), optionally only those of
 * exactly `size` bytes: every stored object and every uploaded part is one blob file there, so
 * a count shows whether parts were kept or removed. (Local R2 keeps its multipart bookkeeping
 * in its own SQLite; the blob files are what it stores.)
 */
export function localR2Blobs(size) {
  const root = join(process.env.LOCKER_STATE ?? "", "v3", "r2");
  let count = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (dir.endsWith("blobs") && (size === undefined || st.size === size)) count++;
    }
  };
  walk(root);
  return count;
}

/** Parts s3s-fs holds for unfinished multipart uploads (`.upload_id-{id}.part-{n}` files). */
export function s3PartFiles(root, uploadId) {
  return readdirSync(root).filter((n) => n.startsWith(`.upload_id-${uploadId}.part-`));
}
