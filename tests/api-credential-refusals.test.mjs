// Credentials: missing, malformed, unknown and revoked keys are refused, and the bootstrap admin
// key owns no files.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, api, reserve } from "./support/api.mjs";
import { refusalKey, refusedAs, reserveBody } from "./support/refusals.mjs";

let key;
let refused;
before(async () => {
  key = await refusalKey();
  refused = refusedAs(key);
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
  await refused(() => reserve(reader.data.key, reserveBody()), {
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

test("the bootstrap admin key manages keys but owns no files", async () => {
  const res = await reserve(ADMIN_KEY, reserveBody());
  assert.equal(res.status, 403);
  const nokey = await api("POST", "/v1/keys", { key: ADMIN_KEY, json: { namespaces: ["*"], ops: ["read"] } });
  assert.equal(nokey.status, 400);
  assert.equal(nokey.data.error.code, "missing_tenant");
});
