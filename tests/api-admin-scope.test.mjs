// An admin key limited to some namespaces administers only those: the access log, the stats
// and the routes it reads hold nothing of the tenant's other namespaces, counts that belong to
// no namespace (blobs, stored objects) are `null` for it, and it cannot set another
// namespace's route. A `*` admin key of the same tenant sees everything, as the control.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, createKey, logs, stats, tenantName, upload } from "./support/api.mjs";

async function makeKey(adminKey, json) {
  const res = await api("POST", "/v1/keys", { key: adminKey, json });
  assert.equal(res.status, 201, res.text);
  return res.data.key;
}

/** A tenant with one committed file in each of namespaces a, b and c, and a `*` admin key. */
async function tenantWithThreeNamespaces(label) {
  const { key: root } = await createKey(tenantName(label));
  for (const namespace of ["a", "b", "c"]) {
    const done = await upload(root, {
      namespace,
      path: `docs/${namespace}.bin`,
      data: bytes(1000 + namespace.charCodeAt(0)),
    });
    assert.equal(done.complete?.status, 200, JSON.stringify(done.reserve?.data));
  }
  return root;
}

test("the access log of a namespace-limited admin holds only rows of its namespaces", async () => {
  const root = await tenantWithThreeNamespaces("log-scope");
  const onlyA = await makeKey(root, { namespaces: ["a"], ops: ["read", "admin"] });
  const aAndC = await makeKey(root, { namespaces: ["a", "c"], ops: ["admin"] });

  const all = await logs(root);
  const namespacesOf = (rows) => [...new Set(rows.map((r) => r.namespace))].sort();
  assert.deepEqual(
    namespacesOf(all.filter((r) => r.operation === "complete")),
    ["a", "b", "c"],
    "the control sees every namespace",
  );
  // Rows without a namespace (key creation, stats, logs) are tenant-wide: hidden too.
  assert.ok(all.some((r) => r.namespace === null));

  const seenByA = await logs(onlyA);
  assert.ok(seenByA.length > 0);
  assert.deepEqual(namespacesOf(seenByA), ["a"]);
  assert.deepEqual(
    seenByA.map((r) => r.id),
    all.filter((r) => r.namespace === "a" && r.id <= seenByA[0].id).map((r) => r.id),
    "exactly the tenant's rows of namespace a, newest first",
  );
  assert.deepEqual(namespacesOf(await logs(aAndC)), ["a", "c"]);

  // Paging keeps to the namespace: every page, one row at a time.
  const paged = [];
  let cursor = "";
  for (;;) {
    const page = await api("GET", `/v1/logs?limit=1${cursor}`, { key: onlyA });
    assert.equal(page.status, 200, page.text);
    paged.push(...page.data.entries);
    if (!page.data.cursor) break;
    cursor = `&cursor=${page.data.cursor}`;
  }
  assert.deepEqual(
    paged.map((r) => r.id),
    seenByA.map((r) => r.id),
  );
  // Filters narrow within the namespace, never widen past it.
  const completes = await logs(onlyA, "&operation=complete");
  assert.deepEqual(
    completes.map((r) => r.path),
    ["docs/a.bin"],
  );
});

test("stats of a namespace-limited admin count only its namespaces; tenant-wide counts are null", async () => {
  const root = await tenantWithThreeNamespaces("stats-scope");
  const onlyA = await makeKey(root, { namespaces: ["a"], ops: ["admin"] });

  const whole = await stats(root);
  assert.equal(whole.files, 3);
  assert.equal(whole.blobs, 3);
  assert.equal(whole.uploads.committed, 3);
  assert.equal(whole.objects, 3);

  const mine = await stats(onlyA);
  assert.equal(mine.files, 1);
  assert.deepEqual(mine.uploads, { pending: 0, committed: 1, aborted: 0, expired: 0 });
  assert.ok(mine.access_log > 0 && mine.access_log < whole.access_log, JSON.stringify([mine, whole]));
  // Blobs and stored objects are keyed by tenant, shared across namespaces: not its to count.
  assert.equal(mine.blobs, null);
  assert.equal(mine.objects, null);
  assert.deepEqual(mine.integrity, {
    routes_without_bucket: 0,
    files_without_bucket: 0,
    blobs_without_bucket: null,
    files_without_verified_blob: 0,
  });
  const filesIn = (s) => s.buckets.reduce((sum, b) => sum + (b.files ?? 0), 0);
  assert.equal(filesIn(whole), 3);
  assert.equal(filesIn(mine), 1);
  assert.ok(mine.buckets.length > 0);
  assert.ok(mine.buckets.every((b) => b.blobs === null));
  assert.ok(whole.buckets.every((b) => typeof b.blobs === "number"));
});

test("a namespace-limited admin lists and sets only its namespaces' routes", async () => {
  const { key: root } = await createKey(tenantName("route-scope"));
  const onlyA = await makeKey(root, { namespaces: ["a"], ops: ["admin"] });
  const { default_bucket_id: bucket } = (await api("GET", "/v1/routes", { key: root })).data;
  for (const namespace of ["*", "b"]) {
    const set = await api("PUT", `/v1/routes/${namespace}`, { key: root, json: { bucket_id: bucket } });
    assert.equal(set.status, 200, set.text);
  }
  const own = await api("PUT", "/v1/routes/a", { key: onlyA, json: { bucket_id: bucket } });
  assert.equal(own.status, 200, own.text);

  const routes = async (key) => {
    const res = await api("GET", "/v1/routes", { key });
    assert.equal(res.status, 200, res.text);
    return res.data.routes.map((r) => r.namespace);
  };
  assert.deepEqual(await routes(root), ["*", "a", "b"]);
  // Neither another namespace's route nor the tenant's default ('*'), which it may not set.
  assert.deepEqual(await routes(onlyA), ["a"]);

  const before = (await api("GET", "/v1/routes", { key: root })).data;
  for (const namespace of ["b", "c", "*"]) {
    const res = await api("PUT", `/v1/routes/${namespace}`, { key: onlyA, json: { bucket_id: bucket } });
    assert.equal(res.status, 403, res.text);
    assert.equal(res.data.error.code, "forbidden", res.text);
  }
  assert.deepEqual((await api("GET", "/v1/routes", { key: root })).data, before, "a refused PUT changed a route");
});
