// `GET /v1/keys`: an admin lists the keys it may see. A tenant admin sees its tenant's keys and
// no other tenant's; an admin limited to some namespaces sees only keys whose namespaces all lie
// among its own; the bootstrap admin sees every tenant's. Revoked and expired keys are listed,
// marked. No answer ever holds a secret or a secret's hash. Pages follow a cursor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, api, createKey, logs, sha256hex, tenantName } from "./support/api.mjs";

const FIELDS = ["created_at", "expires_at", "id", "label", "revoked", "revoked_at", "scopes", "tenant"];

async function makeKey(adminKey, json) {
  const res = await api("POST", "/v1/keys", { key: adminKey, json });
  assert.equal(res.status, 201, res.text);
  return res.data;
}

/** Every key `key` may see, one page of `limit` at a time; asserts the pages' shape. */
async function listAll(key, limit = 1000) {
  const keys = [];
  let cursor = null;
  for (let pages = 0; pages < 10_000; pages++) {
    const q = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await api("GET", `/v1/keys?limit=${limit}${q}`, { key });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.data).sort(), ["cursor", "keys"]);
    assert.ok(res.data.keys.length <= limit);
    keys.push(...res.data.keys);
    if (res.data.cursor === null) return keys;
    assert.equal(res.data.cursor, res.data.keys.at(-1).id, "the cursor is the page's last id");
    cursor = res.data.cursor;
  }
  assert.fail("the cursor never ended");
}

const ids = (keys) => keys.map((k) => k.id);
const sorted = (list) => [...list].sort();

/** The secret part of `lk_{id}.{secret}` and its stored hash: neither may appear in a listing. */
function secretsOf(created) {
  const secret = created.key.slice(created.key.indexOf(".") + 1);
  return [created.key, secret, sha256hex(Buffer.from(secret))];
}

test("a tenant admin lists its tenant's keys, with their scopes and state, and never a secret", async () => {
  const tenant = tenantName("keys-ls");
  const root = await createKey(tenant);
  const other = await createKey(tenantName("keys-ls-other"));
  const before = Date.now();
  const ci = await makeKey(root.key, {
    namespaces: ["corp"],
    ops: ["read", "write"],
    max_size: 5000,
    types: ["image/*"],
    label: "ci deploys",
    expires_in: 3600,
  });
  const gone = await makeKey(root.key, { namespaces: ["*"], ops: ["read"] });
  const revoked = await api("DELETE", `/v1/keys/${gone.id}`, { key: root.key });
  assert.equal(revoked.status, 200, revoked.text);

  const res = await api("GET", "/v1/keys", { key: root.key });
  assert.equal(res.status, 200, res.text);
  const keys = res.data.keys;
  assert.equal(res.data.cursor, null, "one page under the default limit");
  assert.deepEqual(ids(keys), sorted([root.id, ci.id, gone.id]), "the tenant's keys, ordered by id");
  for (const k of keys) {
    assert.deepEqual(Object.keys(k).sort(), FIELDS, JSON.stringify(k));
    assert.equal(k.tenant, tenant);
  }
  const byId = Object.fromEntries(keys.map((k) => [k.id, k]));
  const listedCi = byId[ci.id];
  assert.deepEqual(listedCi.scopes, {
    namespaces: ["corp"],
    ops: ["read", "write"],
    max_size: 5000,
    types: ["image/*"],
  });
  assert.equal(listedCi.label, "ci deploys");
  assert.equal(listedCi.expires_at, ci.expires_at, "the expiry as creation answered it (seconds)");
  assert.equal(listedCi.revoked, false);
  assert.equal(listedCi.revoked_at, null);
  assert.ok(
    listedCi.created_at >= before - 60_000 && listedCi.created_at <= Date.now() + 60_000,
    `created_at in ms: ${listedCi.created_at}`,
  );
  assert.equal(byId[gone.id].revoked, true);
  assert.ok(byId[gone.id].revoked_at >= byId[gone.id].created_at);
  assert.equal(byId[root.id].label, null);
  assert.deepEqual(byId[root.id].scopes, root.scopes);

  for (const created of [root, ci, gone]) {
    for (const s of secretsOf(created)) assert.ok(!res.text.includes(s), "a secret or its hash was answered");
  }
  // The other tenant sees its own key only, and the first tenant's list holds none of it.
  assert.deepEqual(ids(await listAll(other.key)), [other.id]);

  // The listing is an operation of the access log.
  const rows = await logs(root.key, "&operation=keys");
  assert.ok(
    rows.some((r) => r.key_id === root.id && r.success === 1),
    JSON.stringify(rows),
  );
});

test("pages of one key follow the cursor to the same keys as one page", async () => {
  const root = await createKey(tenantName("keys-page"));
  for (let i = 0; i < 4; i++) await makeKey(root.key, { namespaces: [`n${i}`], ops: ["read"] });
  const whole = await listAll(root.key);
  assert.equal(whole.length, 5);
  assert.deepEqual(ids(await listAll(root.key, 1)), ids(whole));
  assert.deepEqual(ids(await listAll(root.key, 2)), ids(whole));
  // A full last page still names a cursor; the page after it is empty and ends the list.
  const five = await api("GET", "/v1/keys?limit=5", { key: root.key });
  assert.equal(five.data.cursor, whole[4].id);
  const after = await api("GET", `/v1/keys?cursor=${five.data.cursor}`, { key: root.key });
  assert.deepEqual(after.data, { keys: [], cursor: null });
});

test("an admin limited to some namespaces sees only the keys within them", async () => {
  const root = await createKey(tenantName("keys-ns"));
  const limited = await makeKey(root.key, { namespaces: ["a", "b"], ops: ["read", "admin"] });
  const onlyA = await makeKey(root.key, { namespaces: ["a"], ops: ["read"] });
  const aAndB = await makeKey(root.key, { namespaces: ["b", "a"], ops: ["write"], max_size: 10 });
  const made = await makeKey(limited.key, { namespaces: ["b"], ops: ["read"] });
  // Beyond it: every namespace, another namespace, or one of its and another.
  await makeKey(root.key, { namespaces: ["*"], ops: ["read"] });
  await makeKey(root.key, { namespaces: ["c"], ops: ["read"] });
  await makeKey(root.key, { namespaces: ["a", "c"], ops: ["read"] });

  assert.equal((await listAll(root.key)).length, 8, "the tenant admin, as the control, sees all");
  const seen = await listAll(limited.key);
  assert.deepEqual(ids(seen), sorted([limited.id, onlyA.id, aAndB.id, made.id]));
  // What it sees, it may revoke: the listing shows no key it could not act on by namespace.
  const res = await api("DELETE", `/v1/keys/${onlyA.id}`, { key: limited.key });
  assert.equal(res.status, 200, res.text);
  const after = (await listAll(limited.key)).find((k) => k.id === onlyA.id);
  assert.equal(after.revoked, true);
});

test("the bootstrap admin sees every tenant's keys", async () => {
  const one = await createKey(tenantName("keys-boot"));
  const two = await createKey(tenantName("keys-boot"));
  const all = await listAll(ADMIN_KEY);
  const found = all.filter((k) => k.id === one.id || k.id === two.id);
  assert.deepEqual(
    found.map((k) => k.tenant),
    (one.id < two.id ? [one, two] : [two, one]).map((k) => k.tenant),
  );
  assert.deepEqual(ids(all), sorted(ids(all)), "ordered by id across tenants");
  for (const created of [one, two]) {
    for (const s of secretsOf(created)) assert.ok(!JSON.stringify(all).includes(s));
  }
});

test("refusals: no admin scope, an upload token, no credential, a bad limit", async () => {
  const root = await createKey(tenantName("keys-refuse"));
  const worker = await makeKey(root.key, { namespaces: ["*"], ops: ["read", "write", "delete"] });
  const denied = await api("GET", "/v1/keys", { key: worker.key });
  assert.equal(denied.status, 403, denied.text);
  assert.equal(typeof denied.data.error.code, "string");

  const minted = await api("POST", "/v1/tokens", { key: root.key, json: { namespace: "corp" } });
  assert.equal(minted.status, 201, minted.text);
  const byToken = await api("GET", "/v1/keys", { key: minted.data.token });
  assert.equal(byToken.status, 403, byToken.text);

  const anonymous = await api("GET", "/v1/keys");
  assert.equal(anonymous.status, 401, anonymous.text);

  for (const limit of ["0", "1001", "ten", "-1"]) {
    const res = await api("GET", `/v1/keys?limit=${limit}`, { key: root.key });
    assert.equal(res.status, 400, `limit=${limit}: ${res.text}`);
    assert.equal(res.data.error.code, "invalid_query");
  }
});
