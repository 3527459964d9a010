// The OpenAPI document and the routes agree.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { api, createKey, tenantName } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("gw"))).key;
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
    // used in api-batch.test.mjs
    "POST /v1/uploads:batch",
    // used in api-complete-batch.test.mjs
    "POST /v1/uploads:complete",
    "POST /v1/uploads/{id}/complete",
    "DELETE /v1/uploads/{id}",
    "PUT /v1/data/{id}",
    "GET /v1/download",
    "GET /v1/files",
    "GET /v1/files/{namespace}/{path}",
    "DELETE /v1/files/{namespace}/{path}",
    "POST /v1/keys",
    "DELETE /v1/keys/{id}",
    // used in api-keys-list.test.mjs
    "GET /v1/keys",
    "POST /v1/tokens",
    "GET /v1/logs",
    "GET /v1/stats",
    "PUT /api/files/{namespace}/{path}",
    "GET /api/files/{namespace}/{path}",
    "DELETE /api/files/{namespace}/{path}",
    "POST /api/signed-url",
    "GET /healthz",
    "GET /openapi.json",
    // used in direct-s3-*.test.mjs
    "POST /v1/buckets",
    "GET /v1/buckets",
    "POST /v1/buckets/{id}/activate",
    "POST /v1/buckets/{id}/deactivate",
    "GET /v1/routes",
    "PUT /v1/routes/{namespace}",
    // used in backup.test.mjs
    "GET /v1/backups",
    "POST /v1/backups",
    "GET /v1/backups/{id}",
    "GET /v1/backups/{id}/download",
    // used in multipart.test.mjs and multipart-s3.test.mjs
    "GET /v1/uploads/{id}",
    "POST /v1/uploads/{id}/parts",
    "PUT /v1/data/{id}/parts/{n}",
    // used in moves.test.mjs
    "POST /v1/moves",
    "GET /v1/moves/{id}",
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
