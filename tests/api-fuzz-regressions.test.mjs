// What `cargo xtask fuzz` (schemathesis against /openapi.json) found, each kept as a fixed
// case over plain HTTP against the real Worker.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { BASE } from "./support/env.mjs";
import { ADMIN_KEY, createKey, logs, tenantName } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("fuzzreg"))).key;
});

/** A raw request: fetch refuses TRACE and may normalise methods; node:http sends them as given. */
function raw(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(`${BASE}${path}`, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text, data: safeJson(text) }));
    });
    req.on("error", reject);
    req.end();
  });
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

test("a method the runtime does not know is refused with 405, not answered as GET", async () => {
  // Found: QUERY /v1/buckets -> 200 {"buckets":[...]}, QUERY /v1/logs -> 200 with entries.
  const before = (await logs(ADMIN_KEY, "&operation=buckets")).length;
  for (const [path, allow] of [
    ["/v1/buckets", "GET, POST"],
    ["/v1/logs", "GET"],
    ["/v1/stats", "GET"],
    ["/v1/download?sig=", "GET"],
    ["/healthz", "GET"],
  ]) {
    const res = await raw("QUERY", path, { authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(res.status, 405, `QUERY ${path}: ${res.text}`);
    assert.equal(res.headers.allow, allow, `QUERY ${path}`);
    assert.equal(res.data.error.code, "method_not_allowed");
  }
  assert.equal((await logs(ADMIN_KEY, "&operation=buckets")).length, before, "the refused QUERY listed nothing");
});

test("every 405 names the methods the route takes in Allow", async () => {
  // Found: TRACE on every route -> 405 without Allow (RFC 9110 requires it); TRACE /healthz
  // and /openapi.json -> 404.
  for (const [method, path, allow] of [
    ["TRACE", "/v1/uploads", "POST"],
    ["TRACE", "/healthz", "GET"],
    ["TRACE", "/openapi.json", "GET"],
    ["PATCH", "/v1/files/corp/a.txt", "GET, DELETE"],
    ["POST", "/api/files/corp/a.txt", "GET, PUT, DELETE"],
    ["GET", "/v1/uploads/up_x/complete", "POST"],
    ["PUT", "/v1/routes", "GET"],
  ]) {
    const res = await raw(method, path, { authorization: `Bearer ${key}` });
    assert.equal(res.status, 405, `${method} ${path}: ${res.text}`);
    assert.equal(res.headers.allow, allow, `${method} ${path}`);
    assert.equal(res.data.error.code, "method_not_allowed");
  }
});

test("DELETE /v1/files (no file named) is 405, not a 400 about a missing namespace", async () => {
  // Found: DELETE /v1/files?namespace=0 -> 400 invalid_ref "missing namespace".
  const res = await raw("DELETE", "/v1/files?namespace=corp", { authorization: `Bearer ${key}` });
  assert.equal(res.status, 405, res.text);
  assert.equal(res.headers.allow, "GET");
});

test("an unknown route stays 404 whatever the method", async () => {
  const res = await raw("QUERY", "/v1/nothing-here", { authorization: `Bearer ${key}` });
  assert.equal(res.status, 404, res.text);
  assert.equal(res.data.error.code, "route_not_found");
});

// Found: PUT /api/files/4ddk/b... with an empty body (Content-Type text/plain) -> 500
// internal "get: Unspecified error": the Worker stores the empty object, then its magic-number
// sniff asked local R2 for a range of a 0-byte object, which miniflare's R2 fails. The first
// PUT stores the empty file (201), the second finds it stored (200, deduplicated).
test("a gateway PUT of an empty body is no 500", async () => {
  const statuses = [];
  for (let i = 0; i < 2; i++) {
    const res = await raw("PUT", "/api/files/corp/fuzz/empty.txt", {
      authorization: `Bearer ${key}`,
      "content-type": "text/plain",
      "content-length": "0",
    });
    statuses.push(res.status);
  }
  assert.deepEqual(statuses, [201, 200]);
});
