// Bad input gets a clear error and changes nothing: each refusal below is checked for its status
// and error code, for an unchanged registry and storage (files, blobs, reservations, R2 objects,
// via /v1/stats), and for exactly one `denied` or `failed` access-log row.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import {
  ADMIN_KEY,
  api,
  bytes,
  createKey,
  logs,
  sha256hex,
  stats,
  stored,
  tenantName,
  upload,
} from "./support/api.mjs";

let key;
let tenant;
before(async () => {
  tenant = tenantName("bad");
  key = (await createKey(tenant, { max_size: 1_000_000, types: ["text/*", "image/png", "application/octet-stream"] }))
    .key;
});

/** Runs `act`, checks its refusal, and that it changed nothing but one log row. */
async function refused(act, { status, code, logged = "failed" }) {
  const before = await stats(key);
  const lastId = (await logs(key))[0]?.id ?? 0;
  const res = await act();
  assert.equal(res.status, status, res.text);
  assert.equal(res.data.error.code, code, res.text);
  assert.equal(typeof res.data.error.message, "string");
  const after = await stats(key);
  assert.deepEqual(stored(after), stored(before), "registry or storage changed");
  const rows = (await logs(key)).filter((r) => r.id > lastId && !["stats", "logs"].includes(r.operation));
  if (logged) {
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0].operation, logged);
    assert.equal(rows[0].success, 0);
    assert.ok(rows[0].error.includes(String(status)));
  }
  return res;
}

function reserveBody(over = {}) {
  const data = Buffer.from("some text");
  return {
    namespace: "corp",
    path: "ok.txt",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "text/plain",
    ...over,
  };
}

async function reserve(data, over = {}) {
  const res = await api("POST", "/v1/uploads", {
    key,
    json: {
      namespace: "corp",
      path: `r/${Math.random()}.bin`,
      sha256: sha256hex(data),
      size: data.length,
      content_type: "application/octet-stream",
      ...over,
    },
  });
  assert.equal(res.status, 201, res.text);
  return res.data;
}

test("a body with other bytes is refused by R2's checksum and nothing is stored", async () => {
  const data = bytes(5000);
  const r = await reserve(data);
  await refused(() => api("PUT", r.url, { body: bytes(5000), headers: r.headers }), {
    status: 400,
    code: "sha256_mismatch",
  });
  const done = await api("POST", `/v1/uploads/${r.upload_id}/complete`, { key });
  assert.equal(done.status, 409);
  assert.equal(done.data.error.code, "not_uploaded");
});

test("a body of another size is refused before it is read", async () => {
  const data = bytes(5000);
  const r = await reserve(data);
  await refused(() => api("PUT", r.url, { body: data.subarray(0, 4999), headers: r.headers }), {
    status: 400,
    code: "size_mismatch",
  });
  await refused(() => api("PUT", r.url, { body: Buffer.concat([data, Buffer.from("x")]), headers: r.headers }), {
    status: 400,
    code: "size_mismatch",
  });
});

test("a tampered URL is refused", async () => {
  const data = bytes(100);
  const r = await reserve(data);
  const url = new URL(r.url);
  const sig = url.searchParams.get("sig");
  const [payload, mac] = sig.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  claims.size = 101;
  url.searchParams.set("sig", `${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${mac}`);
  await refused(() => api("PUT", url.href, { body: Buffer.concat([data, Buffer.from("x")]), headers: r.headers }), {
    status: 403,
    code: "bad_signature",
    logged: "denied",
  });
  // The signature of one upload does not open another.
  const other = await reserve(bytes(100));
  const swapped = r.url.replace(r.upload_id, other.upload_id);
  await refused(() => api("PUT", swapped, { body: data, headers: r.headers }), {
    status: 403,
    code: "forbidden",
    logged: "denied",
  });
  // A flipped bit in the MAC.
  const flipped = r.url.slice(0, -2) + (r.url.endsWith("A") ? "BB" : "AA");
  await refused(() => api("PUT", flipped, { body: data, headers: r.headers }), {
    status: 403,
    code: "bad_signature",
    logged: "denied",
  });
});

test("an expired URL is refused", async () => {
  const data = bytes(100);
  const r = await reserve(data, { expires_in: 1 });
  await new Promise((ok) => setTimeout(ok, 2100));
  await refused(() => api("PUT", r.url, { body: data, headers: r.headers }), {
    status: 403,
    code: "expired",
    logged: "denied",
  });
});

test("a replayed URL is refused once the upload completed", async () => {
  const data = bytes(100);
  const { reserve: r, complete } = await upload(key, { path: "replay.bin", data });
  assert.equal(complete.status, 200);
  await refused(() => api("PUT", r.data.url, { body: data, headers: r.data.headers }), {
    status: 409,
    code: "upload_closed",
  });
});

test("traversal, backslashes, percent-escapes and control characters in paths are refused", async () => {
  const cases = [
    ["../etc/passwd", "invalid_ref"],
    ["a/../../b", "invalid_ref"],
    ["a/%2e%2e/b", "invalid_ref"],
    ["%2E%2E/b", "invalid_ref"],
    ["a\\b", "invalid_ref"],
    ["a\u0000b", "invalid_ref"],
    ["a\nb", "invalid_ref"],
    ["/abs", "invalid_ref"],
  ];
  for (const [path, code] of cases) {
    await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ path }) }), { status: 400, code });
  }
  await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ namespace: "../x" }) }), {
    status: 400,
    code: "invalid_ref",
  });
  // Through the gateway's URL: encoded backslash and control characters are decoded, then refused.
  await refused(
    () => api("PUT", "/api/files/corp/a%5cb.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
  await refused(
    () => api("PUT", "/api/files/corp/a%00b.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
  await refused(
    () =>
      api("PUT", "/api/files/corp/a%252e%252e/b.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
});

test("malformed requests are refused", async () => {
  await refused(
    () => api("POST", "/v1/uploads", { key, body: "{not json", headers: { "content-type": "application/json" } }),
    { status: 400, code: "invalid_json" },
  );
  await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ sha256: "ABC" }) }), {
    status: 400,
    code: "invalid_sha256",
  });
  await refused(
    () => api("POST", "/v1/uploads", { key, json: reserveBody({ content_type: "text/plain; charset=utf-8" }) }),
    { status: 400, code: "invalid_content_type" },
  );
  await refused(() => api("POST", "/v1/uploads", { key, json: { ...reserveBody(), surprise: 1 } }), {
    status: 400,
    code: "invalid_json",
  });
  await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ filename: "a/b" }) }), {
    status: 400,
    code: "invalid_filename",
  });
});

test("oversize and disallowed types are refused with the limit in the message", async () => {
  const big = await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ size: 1_000_001 }) }), {
    status: 413,
    code: "too_large",
  });
  assert.match(big.data.error.message, /1000000/);
  await refused(() => api("POST", "/v1/uploads", { key, json: reserveBody({ content_type: "application/zip" }) }), {
    status: 415,
    code: "type_not_allowed",
  });
  // Declared PNG, bytes are HTML: refused at complete from the stored bytes' magic number.
  const html = Buffer.from("<html><script>alert(1)</script></html>");
  const r = await api("POST", "/v1/uploads", {
    key,
    json: {
      namespace: "corp",
      path: "fake.png",
      sha256: sha256hex(html),
      size: html.length,
      content_type: "image/png",
    },
  });
  assert.equal(r.status, 201, r.text);
  const put = await api("PUT", r.data.url, { body: html, headers: r.data.headers });
  assert.equal(put.status, 201);
  const before = await stats(key);
  const done = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  assert.equal(done.status, 422, done.text);
  assert.equal(done.data.error.code, "content_mismatch");
  const after = await stats(key);
  assert.equal(after.files, before.files);
  assert.equal(after.blobs, before.blobs);
  assert.equal(after.objects, before.objects - 1, "the refused bytes are removed");
});

test("missing, malformed, unknown and revoked keys are refused", async () => {
  await refused(() => api("GET", "/v1/files?namespace=corp"), { status: 401, code: "unauthorized", logged: null });
  await refused(() => api("GET", "/v1/files?namespace=corp", { headers: { authorization: "Basic abc" } }), {
    status: 401,
    code: "unauthorized",
    logged: null,
  });
  await refused(() => api("GET", "/v1/files?namespace=corp", { key: "lk_0000000000000000.nope" }), {
    status: 401,
    code: "unauthorized",
    logged: null,
  });
  const victim = await api("POST", "/v1/keys", { key, json: { namespaces: ["corp"], ops: ["read"] } });
  assert.equal(victim.status, 201, victim.text);
  assert.equal((await api("GET", "/v1/files?namespace=corp", { key: victim.data.key })).status, 200);
  const revoke = await api("DELETE", `/v1/keys/${victim.data.id}`, { key });
  assert.equal(revoke.status, 200, revoke.text);
  await refused(() => api("GET", "/v1/files?namespace=corp", { key: victim.data.key }), {
    status: 401,
    code: "unauthorized",
    logged: "denied",
  });
  // A key's scopes bind: a read-only key cannot write, a corp key cannot read deck.
  const reader = await api("POST", "/v1/keys", { key, json: { namespaces: ["corp"], ops: ["read"] } });
  await refused(() => api("POST", "/v1/uploads", { key: reader.data.key, json: reserveBody() }), {
    status: 403,
    code: "forbidden",
    logged: "denied",
  });
  await refused(() => api("GET", "/v1/files?namespace=deck", { key: reader.data.key }), {
    status: 403,
    code: "forbidden",
    logged: "denied",
  });
  await refused(() => api("GET", "/v1/logs", { key: reader.data.key }), {
    status: 403,
    code: "forbidden",
    logged: "denied",
  });
});

test("another tenant can neither see, overwrite, delete, complete nor dedup against our files", async () => {
  const data = bytes(7777);
  const mine = await upload(key, { path: "secret/plan.bin", data });
  assert.equal(mine.complete.status, 200);
  const other = (await createKey(tenantName("other"))).key;
  const ourBefore = await stats(key);

  const look = await api("GET", "/v1/files/corp/secret/plan.bin", { key: other });
  assert.equal(look.status, 404);
  assert.equal(look.data.error.code, "not_found");
  const list = await api("GET", "/v1/files?namespace=corp", { key: other });
  assert.deepEqual(list.data.files, []);
  assert.equal((await api("DELETE", "/v1/files/corp/secret/plan.bin", { key: other })).status, 404);
  assert.equal((await api("POST", `/v1/uploads/${mine.reserve.data.upload_id}/complete`, { key: other })).status, 404);
  assert.equal((await api("DELETE", `/v1/uploads/${mine.reserve.data.upload_id}`, { key: other })).status, 404);
  assert.equal(
    (await api("POST", "/api/signed-url", { key: other, json: { path: "corp/secret/plan.bin" } })).status,
    404,
  );
  // The same bytes under the other tenant: not deduplicated (that would reveal we have them).
  const theirs = await api("POST", "/v1/uploads", {
    key: other,
    json: {
      namespace: "corp",
      path: "secret/plan.bin",
      sha256: sha256hex(data),
      size: data.length,
      content_type: "application/octet-stream",
    },
  });
  assert.equal(theirs.status, 201, theirs.text);
  assert.equal(theirs.data.status, "upload");
  // Our view did not change, and a tenant admin cannot revoke the other tenant's keys.
  assert.deepEqual(stored(await stats(key)), stored(ourBefore));
  const theirKey = await api("POST", "/v1/keys", { key: other, json: { namespaces: ["*"], ops: ["read"] } });
  assert.equal((await api("DELETE", `/v1/keys/${theirKey.data.id}`, { key })).status, 404);
  assert.equal(
    (await api("POST", "/v1/keys", { key, json: { tenant: "someone-else", namespaces: ["*"], ops: ["read"] } })).status,
    403,
  );
});

test("the bootstrap admin key manages keys but owns no files", async () => {
  const res = await api("POST", "/v1/uploads", { key: ADMIN_KEY, json: reserveBody() });
  assert.equal(res.status, 403);
  const nokey = await api("POST", "/v1/keys", { key: ADMIN_KEY, json: { namespaces: ["*"], ops: ["read"] } });
  assert.equal(nokey.status, 400);
  assert.equal(nokey.data.error.code, "missing_tenant");
});
