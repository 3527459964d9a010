// Plain-HTTP helpers for the API tests: keys, uploads, and snapshots of what is stored.
import { createHash, randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import { BASE } from "./env.mjs";

export const ADMIN_KEY = process.env.LOCKER_ADMIN_KEY;

export function sha256hex(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Random bytes, so every test's content is its own (dedup across tests would hide bugs). */
export function bytes(n, prefix = "") {
  return Buffer.concat([Buffer.from(prefix), randomBytes(Math.max(0, n - prefix.length))]);
}

/** A unique tenant name per call. */
export function tenantName(label) {
  return `${label}-${randomBytes(4).toString("hex")}`;
}

/** fetch against the Worker; `json` bodies are encoded, answers decoded when JSON. */
export async function api(method, path, { key, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  let payload = body;
  if (json !== undefined) {
    h["content-type"] = "application/json";
    payload = JSON.stringify(json);
  }
  const url = path.startsWith("http") ? path : `${BASE}${path}`;
  const res = await fetch(url, { method, headers: h, body: payload });
  const text = await res.text();
  let data = text;
  if ((res.headers.get("content-type") ?? "").includes("application/json")) {
    data = JSON.parse(text);
  }
  return { status: res.status, headers: res.headers, data, text };
}

/** Creates a key for `tenant` with the bootstrap admin key. */
export async function createKey(tenant, scopes = {}) {
  const res = await api("POST", "/v1/keys", {
    key: ADMIN_KEY,
    json: {
      tenant,
      namespaces: ["*"],
      ops: ["read", "write", "delete", "admin"],
      ...scopes,
    },
  });
  assert.equal(res.status, 201, res.text);
  return res.data;
}

/**
 * `POST /v1/uploads`: reserves `data` at `namespace/path`. `sha256` and `size` default to those
 * of `data`; every other field (`expires_in`, `filename`, or a raw field a refusal test bends)
 * goes into the body as given, after the defaults.
 */
export function reserve(
  key,
  { namespace = "corp", path, data, contentType = "application/octet-stream", sha256, size, ...fields } = {},
) {
  return api("POST", "/v1/uploads", {
    key,
    json: {
      namespace,
      path,
      sha256: sha256 ?? sha256hex(data),
      size: size ?? data.length,
      content_type: contentType,
      ...fields,
    },
  });
}

/** Reserve + PUT + complete. Returns every answer along the way. */
export async function upload(
  key,
  { namespace = "corp", path, data, contentType = "application/octet-stream", sha256 },
) {
  const reserved = await reserve(key, { namespace, path, data, contentType, sha256 });
  if (reserved.status !== 201) return { reserve: reserved };
  const put = await api("PUT", reserved.data.url, { body: data, headers: reserved.data.headers });
  const complete = await api("POST", `/v1/uploads/${reserved.data.upload_id}/complete`, { key });
  return { reserve: reserved, put, complete };
}

/**
 * `GET /v1/files/{namespace}/{path}` with `key`, then the URL it signs: asserts both answer 200
 * and that the bytes served have the SHA-256 of `data`.
 */
export async function assertServes(key, namespace, path, data) {
  const got = await api("GET", `/v1/files/${namespace}/${path}`, { key });
  assert.equal(got.status, 200, `${namespace}/${path}: ${got.text}`);
  const res = await fetch(got.data.url);
  assert.equal(res.status, 200, `${namespace}/${path}: GET of its URL`);
  assert.equal(sha256hex(Buffer.from(await res.arrayBuffer())), sha256hex(data), `${namespace}/${path}: SHA-256`);
}

/** What the tenant of `key` has stored: counts from /v1/stats (files, blobs, uploads, R2 objects). */
export async function stats(key) {
  const res = await api("GET", "/v1/stats", { key });
  assert.equal(res.status, 200, res.text);
  return res.data;
}

/** The registry and storage part of stats (everything but the access log). */
export function stored(s) {
  const { access_log: _log, ...rest } = s;
  return rest;
}

/** Access-log rows of the tenant of `key`, newest first. */
export async function logs(key, query = "") {
  const res = await api("GET", `/v1/logs?limit=1000${query}`, { key });
  assert.equal(res.status, 200, res.text);
  return res.data.entries;
}
