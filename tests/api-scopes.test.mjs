// Scopes bind every step: complete and abort need write on the upload's own namespace and path
// (as reserve does); a key or token is never broader than the key that creates it (namespaces,
// ops, size, types, expiry); keys can expire; and a request is validated whole before it has
// any effect. Each refusal is checked for its status and code and for changing nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, createKey, logs, reserve, sha256hex, stats, stored, tenantName, upload } from "./support/api.mjs";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Runs `act`, checks its refusal, and that it changed nothing but one access-log row. */
async function refused(adminKey, act, { status, code, logged = "denied" }) {
  const before = await stats(adminKey);
  const lastId = (await logs(adminKey))[0]?.id ?? 0;
  const res = await act();
  assert.equal(res.status, status, res.text);
  assert.equal(res.data.error.code, code, res.text);
  assert.deepEqual(stored(await stats(adminKey)), stored(before), "registry or storage changed");
  const rows = (await logs(adminKey)).filter((r) => r.id > lastId && !["stats", "logs"].includes(r.operation));
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(rows[0].operation, logged);
  assert.equal(rows[0].success, 0);
  return res;
}

async function makeKey(adminKey, json) {
  const res = await api("POST", "/v1/keys", { key: adminKey, json });
  assert.equal(res.status, 201, res.text);
  return res.data;
}

/** Reserves and PUTs `data` at `namespace/path` with `key`; returns the reservation. */
async function reserveAndPut(key, namespace, path, data) {
  const r = await reserve(key, {
    namespace,
    path,
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  assert.equal(r.status, 201, r.text);
  const put = await api("PUT", r.data.url, { body: data, headers: r.data.headers });
  assert.equal(put.status, 201, put.text);
  return r.data;
}

test("complete needs write on the upload's namespace and path, not just any key of the tenant", async () => {
  const { key: admin } = await createKey(tenantName("complete"));
  const r = await reserveAndPut(admin, "b", "docs/plan.bin", bytes(3000));
  const reader = (await makeKey(admin, { namespaces: ["*"], ops: ["read"] })).key;
  const writerOfA = (await makeKey(admin, { namespaces: ["a"], ops: ["write"] })).key;
  const tokenOtherPrefix = (
    await api("POST", "/v1/tokens", { key: admin, json: { namespace: "b", path_prefix: "users/1/" } })
  ).data.token;
  const tokenOtherNs = (await api("POST", "/v1/tokens", { key: admin, json: { namespace: "a", path_prefix: "docs/" } }))
    .data.token;
  for (const key of [reader, writerOfA, tokenOtherPrefix, tokenOtherNs]) {
    await refused(admin, () => api("POST", `/v1/uploads/${r.upload_id}/complete`, { key }), {
      status: 403,
      code: "forbidden",
    });
  }
  assert.equal((await stats(admin)).uploads.pending, 1);
  // A token for exactly that place, and the key itself, may.
  const tokenHere = (await api("POST", "/v1/tokens", { key: admin, json: { namespace: "b", path_prefix: "docs/" } }))
    .data.token;
  const done = await api("POST", `/v1/uploads/${r.upload_id}/complete`, { key: tokenHere });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.data.ref, "locker://b/docs/plan.bin");
  // Even the idempotent answer of a committed upload needs the right.
  await refused(admin, () => api("POST", `/v1/uploads/${r.upload_id}/complete`, { key: reader }), {
    status: 403,
    code: "forbidden",
  });
});

test("abort needs write on the upload's namespace and path", async () => {
  const { key: admin } = await createKey(tenantName("abort"));
  const r = await reserveAndPut(admin, "b", "x/y.bin", bytes(2000));
  const writerOfA = (await makeKey(admin, { namespaces: ["a"], ops: ["write", "delete"] })).key;
  const reader = (await makeKey(admin, { namespaces: ["b"], ops: ["read", "delete"] })).key;
  const token = (await api("POST", "/v1/tokens", { key: admin, json: { namespace: "b", path_prefix: "other/" } })).data
    .token;
  for (const key of [writerOfA, reader, token]) {
    await refused(admin, () => api("DELETE", `/v1/uploads/${r.upload_id}`, { key }), {
      status: 403,
      code: "forbidden",
    });
  }
  let s = await stats(admin);
  assert.equal(s.uploads.pending, 1);
  assert.equal(s.objects, 1);
  const writerOfB = (await makeKey(admin, { namespaces: ["b"], ops: ["write"] })).key;
  const aborted = await api("DELETE", `/v1/uploads/${r.upload_id}`, { key: writerOfB });
  assert.equal(aborted.status, 200, aborted.text);
  s = await stats(admin);
  assert.equal(s.uploads.pending, 0);
  assert.equal(s.uploads.aborted, 1);
  assert.equal(s.objects, 0);
});

test("a tenant admin cannot create a key broader than itself in any dimension", async () => {
  const { key: root } = await createKey(tenantName("subset"));
  const limited = await makeKey(root, {
    namespaces: ["a"],
    ops: ["write", "admin"],
    max_size: 1000,
    types: ["text/*", "application/pdf"],
    expires_in: 3600,
  });
  assert.equal(typeof limited.expires_at, "number");
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(limited.expires_at - (now + 3600)) < 60, JSON.stringify(limited));
  const within = { namespaces: ["a"], ops: ["write"], max_size: 500, types: ["text/plain"], expires_in: 60 };
  const wider = [
    { namespaces: ["*"] },
    { namespaces: ["a", "b"] },
    { ops: ["write", "read"] },
    { ops: ["delete"] },
    { max_size: 1001 },
    { types: ["*/*"] },
    { types: ["image/png"] },
    { types: ["application/*"] },
    { expires_in: 7200 },
  ];
  for (const over of wider) {
    await refused(root, () => api("POST", "/v1/keys", { key: limited.key, json: { ...within, ...over } }), {
      status: 403,
      code: "scope_exceeded",
    });
  }
  // Within in every dimension: created.
  const child = await makeKey(limited.key, within);
  assert.deepEqual(child.scopes, { namespaces: ["a"], ops: ["write"], max_size: 500, types: ["text/plain"] });
  assert.ok(child.expires_at <= limited.expires_at);
  // Limits left out are the creator's own, not unlimited.
  const inherited = await makeKey(limited.key, { namespaces: ["a"], ops: ["write", "admin"] });
  assert.equal(inherited.scopes.max_size, 1000);
  assert.deepEqual(inherited.scopes.types, ["text/*", "application/pdf"]);
  assert.equal(inherited.expires_at, limited.expires_at);
  // What the inherited key can do is what its creator could: 1001 bytes are too many.
  const tooBig = await reserve(inherited.key, {
    namespace: "a",
    path: "big.txt",
    sha256: sha256hex(bytes(1001)),
    size: 1001,
    content_type: "text/plain",
  });
  assert.equal(tooBig.status, 413, tooBig.text);
  // The bootstrap admin and an unlimited tenant admin still create anything.
  const wide = await makeKey(root, { namespaces: ["*"], ops: ["read", "write", "delete", "admin"] });
  assert.equal(wide.expires_at, null);

  // The same power over existing keys and routes: no revoking a wider key, no default route.
  await refused(root, () => api("DELETE", `/v1/keys/${wide.id}`, { key: limited.key }), {
    status: 403,
    code: "scope_exceeded",
  });
  assert.equal((await api("GET", "/v1/files?namespace=a", { key: wide.key })).status, 200);
  const revoked = await api("DELETE", `/v1/keys/${child.id}`, { key: limited.key });
  assert.equal(revoked.status, 200, revoked.text);
  const { default_bucket_id } = (await api("GET", "/v1/routes", { key: root })).data;
  await refused(root, () => api("PUT", "/v1/routes/*", { key: limited.key, json: { bucket_id: default_bucket_id } }), {
    status: 403,
    code: "forbidden",
  });
  const own = await api("PUT", "/v1/routes/a", { key: limited.key, json: { bucket_id: default_bucket_id } });
  assert.equal(own.status, 200, own.text);
});

test("a token is within its key: namespace, size, types and expiry", async () => {
  const { key: root } = await createKey(tenantName("tokens"));
  const limited = await makeKey(root, {
    namespaces: ["a"],
    ops: ["write"],
    max_size: 1000,
    types: ["text/*"],
    expires_in: 120,
  });
  const mint = (json) => api("POST", "/v1/tokens", { key: limited.key, json: { namespace: "a", ...json } });
  await refused(root, () => mint({ namespace: "b" }), { status: 403, code: "forbidden", logged: "denied" });
  await refused(root, () => mint({ max_size: 1001 }), { status: 413, code: "too_large", logged: "failed" });
  await refused(root, () => mint({ types: ["*/*"] }), { status: 415, code: "type_not_allowed", logged: "failed" });
  // An explicit ttl beyond the key's expiry is refused; without one, the token ends with the key.
  await refused(root, () => mint({ ttl: 600 }), { status: 403, code: "scope_exceeded" });
  const token = await mint({});
  assert.equal(token.status, 201, token.text);
  assert.ok(token.data.expires_at <= limited.expires_at, token.text);
  assert.ok(token.data.expires_at >= limited.expires_at - 5, token.text);
  assert.deepEqual(token.data.types, ["text/*"]);
  assert.equal(token.data.max_size, 1000);
});

test("a key with an expiry stops working, and its tokens with it", async () => {
  const { key: root } = await createKey(tenantName("expiry"));
  for (const expires_in of [0, 10 * 365 * 24 * 3600 + 1]) {
    await refused(
      root,
      () => api("POST", "/v1/keys", { key: root, json: { namespaces: ["a"], ops: ["write"], expires_in } }),
      {
        status: 400,
        code: "invalid_expires_in",
        logged: "failed",
      },
    );
  }
  const brief = await makeKey(root, { namespaces: ["a"], ops: ["read", "write"], expires_in: 2 });
  assert.equal((await api("GET", "/v1/files?namespace=a", { key: brief.key })).status, 200);
  const token = await api("POST", "/v1/tokens", { key: brief.key, json: { namespace: "a" } });
  assert.equal(token.status, 201, token.text);
  await sleep(3100);
  const late = await api("GET", "/v1/files?namespace=a", { key: brief.key });
  assert.equal(late.status, 401, late.text);
  assert.equal(late.data.error.code, "key_expired");
  const data = Buffer.from("late");
  const viaToken = await reserve(token.data.token, {
    namespace: "a",
    path: "late.txt",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "text/plain",
  });
  // The token itself has expired too (it could not outlive its key) or its key is refused.
  assert.ok([401, 403].includes(viaToken.status), viaToken.text);
  const denied = (await logs(root)).filter((l) => l.operation === "denied" && l.key_id === brief.id);
  assert.ok(denied.length >= 1, JSON.stringify(denied));
});

test("a reservation is validated whole before the dedup path can answer", async () => {
  const { key } = await createKey(tenantName("whole"));
  const data = bytes(1234);
  const first = await upload(key, { namespace: "corp", path: "first.bin", data });
  assert.equal(first.complete.status, 200, first.complete.text);
  const body = {
    namespace: "corp",
    path: "copy.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  };
  // Before the fix, these answered 200 "deduplicated" and wrote corp/copy.bin.
  for (const [over, code] of [
    [{ expires_in: 0 }, "invalid_expires_in"],
    [{ expires_in: 3601 }, "invalid_expires_in"],
    [{ filename: "a/b" }, "invalid_filename"],
  ]) {
    await refused(key, () => reserve(key, { ...body, ...over }), {
      status: 400,
      code,
      logged: "failed",
    });
  }
  assert.equal((await api("GET", "/v1/files/corp/copy.bin", { key })).status, 404);
  const ok = await reserve(key, { ...body, expires_in: 60 });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.data.status, "deduplicated");
});
