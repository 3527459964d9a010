// The original gateway API, upload tokens for browsers, the access log, CORS and the OpenAPI
// document, over plain HTTP against the real Worker.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { api, bytes, createKey, logs, sha256hex, stats, tenantName, upload } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("gw"))).key;
});

test("gateway PUT, GET, dedup answer, signed URL and DELETE", async () => {
  const data = bytes(70_000);
  const put = await api("PUT", "/api/files/corp/gw/one.bin", {
    key,
    body: data,
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.data.ref, "locker://corp/gw/one.bin");
  assert.equal(put.data.sha256, sha256hex(data));
  assert.equal(put.data.size_bytes, data.length);
  assert.equal(sha256hex(Buffer.from(await (await fetch(put.data.url)).arrayBuffer())), sha256hex(data));

  const got = await fetch(`${BASE}/api/files/corp/gw/one.bin`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(got.status, 200);
  assert.equal(sha256hex(Buffer.from(await got.arrayBuffer())), sha256hex(data));

  // Same bytes elsewhere, with the digest given up front: nothing is stored twice.
  const before = await stats(key);
  const again = await api("PUT", "/api/files/corp/gw/two.bin", {
    key,
    body: data,
    headers: { "content-type": "application/octet-stream", "x-locker-sha256": sha256hex(data) },
  });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.data.deduplicated, true);
  assert.equal(again.data.existing_ref, "locker://corp/gw/one.bin");
  const after = await stats(key);
  assert.equal(after.objects, before.objects);
  assert.equal(after.files, before.files + 1);

  // A wrong digest header is refused by R2 and stores nothing.
  const other = bytes(1000);
  const lie = await api("PUT", "/api/files/corp/gw/lie.bin", {
    key,
    body: other,
    headers: { "content-type": "application/octet-stream", "x-locker-sha256": sha256hex(bytes(1000)) },
  });
  assert.equal(lie.status, 400, lie.text);
  assert.equal(lie.data.error.code, "sha256_mismatch");
  assert.equal((await stats(key)).objects, after.objects);

  const signed = await api("POST", "/api/signed-url", { key, json: { path: "corp/gw/two.bin", expires_in: 60 } });
  assert.equal(signed.status, 200, signed.text);
  assert.equal(signed.data.ref, "locker://corp/gw/two.bin");
  assert.equal(sha256hex(Buffer.from(await (await fetch(signed.data.url)).arrayBuffer())), sha256hex(data));
  const tooLong = await api("POST", "/api/signed-url", { key, json: { path: "corp/gw/two.bin", expires_in: 604_801 } });
  assert.equal(tooLong.status, 400);

  const del = await api("DELETE", "/api/files/corp/gw/one.bin", { key });
  assert.equal(del.status, 200, del.text);
  assert.equal(del.data.bytes_deleted, false, "two.bin still uses the bytes");
  assert.equal((await api("GET", "/api/files/corp/gw/one.bin", { key })).status, 404);
});

test("upload tokens let a browser upload within their namespace, prefix, size and types only", async () => {
  const minted = await api("POST", "/v1/tokens", {
    key,
    json: { namespace: "deck", path_prefix: "u/42/", max_size: 1000, types: ["image/png", "text/*"], ttl: 60 },
  });
  assert.equal(minted.status, 201, minted.text);
  const token = minted.data.token;
  assert.match(token, /^lkt_/);

  const ok = await upload(token, {
    namespace: "deck",
    path: "u/42/note.txt",
    data: Buffer.from("hello"),
    contentType: "text/plain",
  });
  assert.equal(ok.complete.status, 200, ok.complete.text);
  const cases = [
    [{ namespace: "corp", path: "u/42/a.txt" }, 403],
    [{ namespace: "deck", path: "u/43/a.txt" }, 403],
    [{ namespace: "deck", path: "u/42/a.zip", content_type: "application/zip" }, 415],
    [{ namespace: "deck", path: "u/42/big.txt", size: 1001 }, 413],
  ];
  for (const [over, status] of cases) {
    const res = await api("POST", "/v1/uploads", {
      key: token,
      json: { sha256: sha256hex(Buffer.from("x")), size: 1, content_type: "text/plain", ...over },
    });
    assert.equal(res.status, status, `${JSON.stringify(over)}: ${res.text}`);
  }
  // A token cannot read, list, mint tokens or manage keys.
  assert.equal((await api("GET", "/v1/files?namespace=deck", { key: token })).status, 403);
  assert.equal((await api("POST", "/v1/tokens", { key: token, json: { namespace: "deck" } })).status, 403);
  assert.equal((await api("POST", "/v1/keys", { key: token, json: { namespaces: ["*"], ops: ["read"] } })).status, 403);
  // A token cannot outgrow the key that mints it.
  const limited = await api("POST", "/v1/keys", {
    key,
    json: { namespaces: ["deck"], ops: ["write"], max_size: 10, types: ["text/plain"] },
  });
  const wider = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck", max_size: 11 } });
  assert.equal(wider.status, 413, wider.text);
  const otherType = await api("POST", "/v1/tokens", {
    key: limited.data.key,
    json: { namespace: "deck", types: ["image/*"] },
  });
  assert.equal(otherType.status, 415, otherType.text);
  // Revoking the minting key kills its tokens; an expired token is refused.
  const child = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck", ttl: 1 } });
  assert.equal(child.status, 201);
  await new Promise((ok) => setTimeout(ok, 1100));
  const expired = await api("POST", "/v1/uploads", {
    key: child.data.token,
    json: {
      namespace: "deck",
      path: "x.txt",
      sha256: sha256hex(Buffer.from("x")),
      size: 1,
      content_type: "text/plain",
    },
  });
  assert.equal(expired.status, 403);
  assert.equal(expired.data.error.code, "expired");
  const fresh = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck" } });
  await api("DELETE", `/v1/keys/${limited.data.id}`, { key });
  const dead = await api("POST", "/v1/uploads", {
    key: fresh.data.token,
    json: {
      namespace: "deck",
      path: "x.txt",
      sha256: sha256hex(Buffer.from("x")),
      size: 1,
      content_type: "text/plain",
    },
  });
  assert.equal(dead.status, 401, dead.text);
});

test("the access log holds exactly one row per operation, and never a secret", async () => {
  const own = await createKey(tenantName("log"));
  const k = own.key;
  const data = bytes(500);
  const { reserve } = await upload(k, { path: "log/a.bin", data });
  await api("POST", "/v1/uploads", {
    key: k,
    json: {
      namespace: "corp",
      path: "log/b.bin",
      sha256: sha256hex(data),
      size: data.length,
      content_type: "application/octet-stream",
    },
  });
  const meta = await api("GET", "/v1/files/corp/log/a.bin", { key: k });
  await fetch(meta.data.url);
  await api("DELETE", "/v1/files/corp/log/b.bin", { key: k });
  await api("GET", "/v1/files/corp/log/missing.bin", { key: k });
  await api("POST", "/v1/uploads", {
    key: k,
    json: { namespace: "corp", path: "../x", sha256: sha256hex(data), size: 1, content_type: "text/plain" },
  });

  const rows = (await logs(k)).reverse();
  assert.deepEqual(
    rows.map((r) => [r.operation, r.path, r.success]),
    [
      ["key_create", null, 1],
      ["reserve", "log/a.bin", 1],
      ["upload", "log/a.bin", 1],
      ["complete", "log/a.bin", 1],
      ["dedup", "log/b.bin", 1],
      ["stat", "log/a.bin", 1],
      ["download", null, 1],
      ["delete", "log/b.bin", 1],
      ["failed", "log/missing.bin", 0],
      ["failed", "../x", 0],
    ],
  );
  const upload_row = rows[2];
  assert.equal(upload_row.bytes, 500);
  assert.equal(upload_row.sha256, sha256hex(data));
  assert.equal(upload_row.server, "local");
  assert.equal(upload_row.key_id, null, "the data plane is authorized by signature, not by a key");
  assert.equal(rows[0].key_id, "bootstrap");
  assert.equal(rows[3].key_id, own.id);
  assert.equal(rows[6].bytes, 500);
  assert.match(rows[1].bucket_id, /^[0-9a-f]{64}$/);
  const text = JSON.stringify(rows);
  const sig = new URL(reserve.data.url).searchParams.get("sig");
  assert.ok(!text.includes(sig.split(".")[1]), "a signature leaked into the log");
  assert.ok(!text.includes(k.split(".")[1]), "a key secret leaked into the log");
  // Filters: by operation and by time.
  const completes = await logs(k, "&operation=complete");
  assert.equal(completes.length, 1);
  const later = await logs(k, `&since=${rows.at(-1).ts + 1}`);
  assert.ok(later.every((r) => r.ts > rows.at(-1).ts));
});

test("CORS: configured origins get answers and preflights, others get no CORS headers", async () => {
  const origin = process.env.LOCKER_CORS_ORIGIN;
  const pre = await fetch(`${BASE}/v1/uploads`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), origin);
  assert.match(pre.headers.get("access-control-allow-headers"), /authorization/);
  const res = await fetch(`${BASE}/v1/files?namespace=corp`, { headers: { origin, authorization: `Bearer ${key}` } });
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  const evil = await fetch(`${BASE}/v1/files?namespace=corp`, {
    headers: { origin: "https://evil.example", authorization: `Bearer ${key}` },
  });
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
});

test("the OpenAPI document lists every route, and every listed route exists", async () => {
  const res = await fetch(`${BASE}/openapi.json`);
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  const fill = (p) => p.replace("{namespace}", "corp").replace("{path}", "a/b.txt").replace("{id}", "x");
  const documented = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      documented.push(`${method.toUpperCase()} ${path}`);
      const r = await fetch(`${BASE}${fill(path)}`, {
        method: method.toUpperCase(),
        headers: { authorization: `Bearer ${key}` },
      });
      const body = await r.text();
      assert.ok(
        !body.includes("route_not_found") && r.status !== 405,
        `${method} ${path} is documented but not routed (${r.status})`,
      );
    }
  }
  // Every route these tests use is documented.
  const used = [
    "POST /v1/uploads",
    "POST /v1/uploads/{id}/complete",
    "DELETE /v1/uploads/{id}",
    "PUT /v1/data/{id}",
    "GET /v1/download",
    "GET /v1/files",
    "GET /v1/files/{namespace}/{path}",
    "DELETE /v1/files/{namespace}/{path}",
    "POST /v1/keys",
    "DELETE /v1/keys/{id}",
    "POST /v1/tokens",
    "GET /v1/logs",
    "GET /v1/stats",
    "PUT /api/files/{namespace}/{path}",
    "GET /api/files/{namespace}/{path}",
    "DELETE /api/files/{namespace}/{path}",
    "POST /api/signed-url",
    "GET /healthz",
    "GET /openapi.json",
    // used in direct.test.mjs
    "POST /v1/buckets",
    "GET /v1/buckets",
    "POST /v1/buckets/{id}/activate",
    "POST /v1/buckets/{id}/deactivate",
    "GET /v1/routes",
    "PUT /v1/routes/{namespace}",
  ];
  assert.deepEqual(
    used.filter((u) => !documented.includes(u)),
    [],
  );
  assert.deepEqual(
    documented.filter((d) => !used.includes(d)),
    [],
  );
  const unknown = await api("GET", "/v1/nothing-here", { key });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.data.error.code, "route_not_found");
});

test("the OpenAPI document describes every answer exactly enough for a fuzzer", async () => {
  const doc = await (await fetch(`${BASE}/openapi.json`)).json();
  const resolve = (s) => {
    while (s?.$ref)
      s = s.$ref
        .split("/")
        .slice(1)
        .reduce((o, k) => o[k], doc);
    return s;
  };
  const fill = (p) => p.replace("{namespace}", "corp").replace("{path}", "a/b.txt").replace("{id}", "x");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const name = `${method.toUpperCase()} ${path}`;
      assert.ok(!("default" in op.responses), `${name}: every status is listed, no 'default'`);
      assert.ok(Array.isArray(op.security), `${name}: says which credentials it takes`);
      for (const [status, r] of Object.entries(op.responses)) {
        const response = resolve(r);
        if (Number(status) >= 400 && status !== "503") {
          assert.equal(
            resolve(response.content["application/json"].schema),
            doc.components.schemas.Error,
            `${name} ${status}`,
          );
        }
      }
      const body = op.requestBody?.content?.["application/json"]?.schema;
      if (body) {
        const schema = resolve(body);
        assert.equal(schema.additionalProperties, false, `${name}: unknown fields are refused (deny_unknown_fields)`);
        assert.ok(schema.required?.length, `${name}: names its required fields`);
      }
      // Without a credential, every secured operation answers a documented 401 in the error shape.
      if (op.security.length) {
        assert.ok(op.responses["401"], `${name}: 401 is documented`);
        const res = await api(method.toUpperCase(), fill(path), {
          json: method === "get" || method === "delete" ? undefined : {},
        });
        assert.equal(res.status, 401, `${name} without a credential: ${res.text}`);
        assert.equal(typeof res.data.error.code, "string");
      }
    }
  }
});
