// Moving a tenant's files between buckets (POST /v1/moves, GET /v1/moves/{id}): from the R2
// binding (the default bucket) to an s3 bucket on s3s-fs, through the scheduled runs (wrangler
// dev's /__scheduled; xtask sets LOCKER_MOVE_BATCH=2 and LOCKER_MOVE_MAX_BLOB=3000000 for this
// run, so a move spans several runs and a 3.5 MB blob is too large to move). Downloads are
// checked byte for byte before, between runs and after; refs, other tenants and the access log
// are checked too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { ADMIN_KEY, api, bytes, createKey, logs, sha256hex, stats, tenantName, upload } from "./support/api.mjs";
import { directBucket, objectKey } from "./support/direct.mjs";
import { S3_BUCKET, S3_ROOT, objectOnDisk, registerS3Bucket } from "./support/s3.mjs";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const s3 = directBucket();
const TOO_LARGE = 3_500_000;

async function runScheduled() {
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  assert.equal(res.status, 200);
  await res.text();
}

async function defaultBucket(key) {
  const routes = await api("GET", "/v1/routes", { key });
  assert.equal(routes.status, 200, routes.text);
  return routes.data.default_bucket_id;
}

/** Each file's bytes as served now, through its signed URL and through the gateway. */
async function servedAll(key, files) {
  for (const [path, data] of Object.entries(files)) {
    const info = await api("GET", `/v1/files/corp/${path}`, { key });
    assert.equal(info.status, 200, info.text);
    const viaUrl = await fetch(info.data.url);
    assert.equal(viaUrl.status, 200, `${path} via its URL`);
    assert.equal(sha256hex(Buffer.from(await viaUrl.arrayBuffer())), sha256hex(data), path);
    const viaGateway = await fetch(`${BASE}/api/files/corp/${path}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(viaGateway.status, 200, `${path} via the gateway`);
    assert.equal(sha256hex(Buffer.from(await viaGateway.arrayBuffer())), sha256hex(data), path);
  }
}

async function fileRows(key) {
  const list = await api("GET", "/v1/files?namespace=corp&limit=1000", { key });
  assert.equal(list.status, 200, list.text);
  return Object.fromEntries(list.data.files.map((f) => [f.path, f]));
}

async function getMove(key, id) {
  const res = await api("GET", `/v1/moves/${id}`, { key });
  assert.equal(res.status, 200, res.text);
  return res.data;
}

test("a tenant's files move from the R2 binding to an s3 bucket; downloads work throughout", async () => {
  const tenant = tenantName("mover");
  const { key } = await createKey(tenant);
  const from = await defaultBucket(key);
  const to = s3.bucket.id;

  // Through the Worker's data plane (reserve, PUT, complete) and the gateway's server-side PUT;
  // one blob used by two files; one blob too large to move.
  const files = {};
  for (const i of [1, 2, 3, 4]) {
    const data = bytes(10_000 * i, `move-${i}-`);
    const done = await upload(key, { path: `a/${i}.bin`, data });
    assert.equal(done.complete.status, 200, done.complete.text);
    files[`a/${i}.bin`] = data;
  }
  files["a/again.bin"] = files["a/1.bin"];
  assert.equal((await upload(key, { path: "a/again.bin", data: files["a/again.bin"] })).reserve.status, 200);
  const gw = bytes(20_000, "gateway-");
  const put = await api("PUT", "/api/files/corp/g/one.bin", {
    key,
    body: gw,
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(put.status, 201, put.text);
  files["g/one.bin"] = gw;
  const big = bytes(TOO_LARGE, "big-");
  assert.equal((await upload(key, { path: "big.bin", data: big })).complete.status, 200);
  files["big.bin"] = big;

  // Another tenant's file in the same bucket, which the move must not touch.
  const other = await createKey(tenantName("bystander"));
  const theirs = bytes(5000, "theirs-");
  assert.equal((await upload(other.key, { path: "x.bin", data: theirs })).complete.status, 200);

  const before = await fileRows(key);
  assert.ok(Object.values(before).every((f) => f.bucket_id === from));
  await servedAll(key, files);
  assert.equal((await stats(key)).objects, 6, "six blobs in R2 before");

  const started = await api("POST", "/v1/moves", { key, json: { from_bucket: from, to_bucket: to } });
  assert.equal(started.status, 201, started.text);
  const id = started.data.id;
  assert.match(id, /^mv_[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(
    [started.data.tenant, started.data.from_bucket, started.data.to_bucket, started.data.state],
    [tenant, from, to, "running"],
  );
  assert.deepEqual([started.data.moved, started.data.remaining, started.data.routes_switched], [0, 6, 1]);
  assert.equal(started.data.finished_at, null);

  // The move switched the route: the tenant's new uploads go to the target from now on.
  const routes = await api("GET", "/v1/routes", { key });
  assert.deepEqual(
    routes.data.routes.map((r) => [r.namespace, r.bucket_id]),
    [["*", to]],
  );

  // While running: each run moves at most two blobs; every file is served, same bytes.
  await runScheduled();
  const during = await getMove(key, id);
  assert.equal(during.state, "running");
  // Two blobs a run: two moved, or one and the too-large one set aside.
  assert.ok(during.moved >= 1 && during.moved <= 2, JSON.stringify(during));
  assert.equal(during.remaining, 6 - during.moved);
  await servedAll(key, files);
  const mid = await fileRows(key);
  assert.deepEqual(
    [...new Set(Object.values(mid).map((f) => f.bucket_id))].sort(),
    [from, to].sort(),
    "some files moved, some not yet",
  );

  // An upload while the move runs follows the switched route.
  const fresh = bytes(7000, "fresh-");
  const freshUp = await upload(key, { path: "fresh.bin", data: fresh });
  assert.equal(freshUp.complete.status, 200, freshUp.complete.text);
  assert.ok(!freshUp.reserve.data.url.startsWith(BASE), "a presigned URL of the s3 bucket");
  files["fresh.bin"] = fresh;

  let move = during;
  for (let i = 0; i < 10 && move.state === "running"; i++) {
    await runScheduled();
    move = await getMove(key, id);
  }
  assert.equal(move.state, "done", JSON.stringify(move));
  assert.equal(move.moved, 5);
  assert.equal(move.moved_bytes, 10_000 + 20_000 + 30_000 + 40_000 + 20_000);
  assert.equal(move.remaining, 1, "the too-large blob stays");
  assert.equal(move.pending_uploads, 0);
  assert.ok(move.finished_at >= move.created_at);
  assert.deepEqual(
    move.problems.map((p) => [p.sha256, p.size, p.problem]),
    [[sha256hex(big), TOO_LARGE, "too_large"]],
  );

  // After: same refs, same digests, the bytes in the target, the sources gone from R2.
  await servedAll(key, files);
  const after = await fileRows(key);
  for (const [path, f] of Object.entries(before)) {
    assert.equal(after[path].ref, f.ref);
    assert.equal(after[path].sha256, f.sha256);
    assert.equal(after[path].bucket_id, path === "big.bin" ? from : to, path);
  }
  for (const [path, data] of Object.entries(files)) {
    assert.equal(objectOnDisk(objectKey(tenant, data)), path !== "big.bin", `${path} in s3s-fs`);
  }
  const s = await stats(key);
  assert.equal(s.objects, 1, "only the too-large blob is left in R2");
  assert.deepEqual(Object.values(s.integrity), [0, 0, 0, 0]);

  // The bystander's file is where it was, and served.
  const theirInfo = await api("GET", "/v1/files/corp/x.bin", { key: other.key });
  assert.equal(theirInfo.data.bucket_id, from);
  assert.equal(sha256hex(Buffer.from(await (await fetch(theirInfo.data.url)).arrayBuffer())), sha256hex(theirs));
  assert.equal((await stats(other.key)).objects, 1);
  assert.equal((await api("GET", `/v1/moves/${id}`, { key: other.key })).status, 404);

  // Logged: the start, and one row per blob moved, in the target bucket.
  const rows = await logs(key);
  assert.equal(rows.filter((r) => r.operation === "move_start" && r.success === 1).length, 1);
  const moved = rows.filter((r) => r.operation === "move_blob" && r.success === 1);
  assert.equal(moved.length, 5);
  assert.ok(moved.every((r) => r.bucket_id === to && r.path === id));

  // The bootstrap admin sees the move too; a second move of the rest is possible now.
  assert.equal((await api("GET", `/v1/moves/${id}`, { key: ADMIN_KEY })).status, 200);
});

test("refusals: scope, buckets, input, a second move; none writes anything", async () => {
  const tenant = tenantName("refused");
  const { key } = await createKey(tenant);
  const from = await defaultBucket(key);
  const to = s3.bucket.id;
  const data = bytes(3000, "refusals-");
  assert.equal((await upload(key, { path: "r.bin", data })).complete.status, 200);
  const body = { from_bucket: from, to_bucket: to };
  const start = (k, json) => api("POST", "/v1/moves", { key: k, json });
  const expect = async (res, status, code) => {
    assert.equal(res.status, status, res.text);
    assert.equal(res.data.error.code, code, res.text);
  };

  // Scope: a namespace-limited admin, a key without admin, another tenant named, a token.
  const limited = await createKey(tenant, { namespaces: ["corp"] });
  await expect(await start(limited.key, body), 403, "forbidden");
  await expect(await api("GET", "/v1/moves/mv_AAAAAAAAAAAAAAAAAAAAAA", { key: limited.key }), 403, "forbidden");
  const reader = await createKey(tenant, { ops: ["read", "write"] });
  await expect(await start(reader.key, body), 403, "forbidden");
  const stranger = await createKey(tenantName("stranger"));
  await expect(await start(stranger.key, { ...body, tenant }), 403, "forbidden");
  const token = await api("POST", "/v1/tokens", { key, json: { namespace: "corp" } });
  assert.equal(token.status, 201, token.text);
  await expect(await start(token.data.token, body), 403, "forbidden");

  // Input and buckets.
  await expect(await start(ADMIN_KEY, body), 400, "missing_tenant");
  await expect(await start(ADMIN_KEY, { ...body, tenant: "NOT A TENANT" }), 400, "invalid_tenant");
  await expect(await start(key, { ...body, extra: 1 }), 400, "invalid_json");
  await expect(await start(key, { from_bucket: from }), 400, "invalid_json");
  await expect(await start(key, { from_bucket: from, to_bucket: from }), 409, "same_bucket");
  // Two registrations of one storage (s3s-fs through the CORS proxy and s3s-fs itself): a move
  // would copy each object onto itself and delete it as the source. A probe object written
  // through one and seen through the other refuses it; the probe does not stay.
  const sameStorage = await registerS3Bucket();
  await expect(await start(key, { from_bucket: to, to_bucket: sameStorage.id }), 409, "same_bucket");
  const probes = join(S3_ROOT, S3_BUCKET, "locker-probe");
  assert.deepEqual(existsSync(probes) ? readdirSync(probes) : [], [], "no probe object left");
  await expect(await start(key, { from_bucket: from, to_bucket: "f".repeat(64) }), 404, "not_found");
  await expect(await start(key, { from_bucket: "f".repeat(64), to_bucket: to }), 404, "not_found");
  const off = await api("POST", `/v1/buckets/${to}/deactivate`, { key: ADMIN_KEY });
  assert.equal(off.status, 200, off.text);
  try {
    await expect(await start(key, body), 409, "bucket_inactive");
  } finally {
    assert.equal((await api("POST", `/v1/buckets/${to}/activate`, { key: ADMIN_KEY })).status, 200);
  }
  await expect(await api("GET", "/v1/moves/nothing", { key }), 404, "not_found");
  await expect(await api("GET", "/v1/moves/mv_AAAAAAAAAAAAAAAAAAAAAA", { key }), 404, "not_found");

  // Nothing was written: no route, no move row in the log, the file where it was.
  assert.deepEqual((await api("GET", "/v1/routes", { key })).data.routes, []);
  assert.equal((await logs(key)).filter((r) => r.operation === "move_start" && r.success === 1).length, 0);
  assert.equal((await api("GET", "/v1/files/corp/r.bin", { key })).data.bucket_id, from);

  // The bootstrap admin names the tenant; a second move of the same tenant waits for the first.
  const first = await start(ADMIN_KEY, { ...body, tenant });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.data.tenant, tenant);
  await expect(await start(key, { from_bucket: to, to_bucket: from }), 409, "move_running");
  await expect(await api("GET", `/v1/moves/${first.data.id}`, { key: stranger.key }), 404, "not_found");
  let move = first.data;
  for (let i = 0; i < 10 && move.state === "running"; i++) {
    await runScheduled();
    move = await getMove(key, first.data.id);
  }
  assert.equal(move.state, "done", JSON.stringify(move));
  assert.equal(move.moved, 1);

  // And back: the route follows again; the file comes home to R2, same bytes.
  const back = await start(key, { from_bucket: to, to_bucket: from });
  assert.equal(back.status, 201, back.text);
  assert.equal(back.data.routes_switched, 1);
  move = back.data;
  for (let i = 0; i < 10 && move.state === "running"; i++) {
    await runScheduled();
    move = await getMove(key, back.data.id);
  }
  assert.equal(move.state, "done", JSON.stringify(move));
  const info = await api("GET", "/v1/files/corp/r.bin", { key });
  assert.equal(info.data.bucket_id, from);
  assert.equal(sha256hex(Buffer.from(await (await fetch(info.data.url)).arrayBuffer())), sha256hex(data));
  assert.equal(objectOnDisk(objectKey(tenant, data)), false);
  assert.equal((await stats(key)).objects, 1);
});
