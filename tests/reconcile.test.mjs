// The reconciler, part of every scheduled run (wrangler dev's /__scheduled): failed deletions
// are kept and retried, objects nobody claims go after their grace, in the default bucket and
// in S3 buckets (xtask sets LOCKER_ORPHAN_GRACE_S=10 and LOCKER_RECONCILE_BATCH=1000 for this
// run), and a blob whose object vanished is reported, never deleted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BASE } from "./support/env.mjs";
import {
  ADMIN_KEY,
  api,
  assertServes,
  bytes,
  createKey,
  logs,
  sha256hex,
  stats,
  tenantName,
  upload,
} from "./support/api.mjs";
import { S3_BUCKET, S3_URL, objectOnDisk, registerS3Bucket } from "./support/s3.mjs";

const STATE = process.env.LOCKER_STATE;
const S3_ACCESS_KEY = process.env.LOCKER_S3_ACCESS_KEY;
const S3_SECRET_KEY = process.env.LOCKER_S3_SECRET_KEY;
const GRACE_MS = 10_000;

async function scheduledRun() {
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  assert.equal(res.status, 200, await res.text());
}

/** `wrangler r2 object ...` on the local bucket of the running Worker: storage changed behind
 * the Worker's back, as an operator or a fault would. */
function r2(...args) {
  const wrangler = join("node_modules", "wrangler", "bin", "wrangler.js");
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [wrangler, "r2", "object", ...args, "--local", "--persist-to", STATE],
      { env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" } },
      (error, stdout, stderr) => (error ? reject(new Error(`${stdout}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

/**
 * A pass-through proxy to s3s-fs that answers the next `failDeletes` DELETEs with 503. It
 * stands in for a storage fault s3s-fs cannot produce on demand.
 */
async function faultyProxy() {
  const target = new URL(S3_URL);
  // `deletes`: the paths of the DELETEs it saw. The scheduled run's S3 orphan pass lists this
  // registration too (it names the suite's one s3s-fs bucket) and may delete other tests'
  // orphans through it, so a test counts the DELETEs of its own object (`deletesOf`).
  const proxy = { failDeletes: 0, deletes: [], listedAll: false };
  proxy.deletesOf = (key) =>
    proxy.deletes.filter((url) => new URL(url, "http://x").pathname.endsWith(`/${key}`)).length;
  const server = http.createServer((req, res) => {
    if (req.method === "DELETE") {
      proxy.deletes.push(req.url);
      if (proxy.failDeletes > 0) {
        proxy.failDeletes -= 1;
        res.writeHead(503, { "content-type": "application/xml" });
        res.end("<Error><Code>SlowDown</Code><Message>refused by the test</Message></Error>");
        return;
      }
    }
    const listing = req.method === "GET" && new URL(req.url, "http://x").searchParams.get("list-type") === "2";
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        if (listing) {
          // A ListObjectsV2 page that is not truncated ends a whole pass over the bucket.
          const body = [];
          answer.on("data", (d) => body.push(d));
          answer.on("end", () => {
            if (Buffer.concat(body).toString().includes("<IsTruncated>false</IsTruncated>")) proxy.listedAll = true;
          });
        }
        answer.pipe(res);
      },
    );
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => new Promise((resolve) => server.close(resolve));
  return proxy;
}

/**
 * PUT `body` at `key` straight into the tests' S3 bucket (s3s-fs), signed here with SigV4
 * (header auth): an object that reached storage without the Worker, as another tool or a
 * lost registry row would leave it.
 */
async function s3Put(key, body) {
  const url = new URL(`${S3_URL}/${S3_BUCKET}/${key}`);
  const date = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const day = date.slice(0, 8);
  const payload = createHash("sha256").update(body).digest("hex");
  const signed = "host;x-amz-content-sha256;x-amz-date";
  const canonical = [
    "PUT",
    url.pathname,
    "",
    `host:${url.host}`,
    `x-amz-content-sha256:${payload}`,
    `x-amz-date:${date}`,
    "",
    signed,
    payload,
  ].join("\n");
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
  const hmac = (k, v) => createHmac("sha256", k).update(v).digest();
  let signingKey = hmac(`AWS4${S3_SECRET_KEY}`, day);
  for (const part of ["us-east-1", "s3", "aws4_request"]) signingKey = hmac(signingKey, part);
  const signature = createHmac("sha256", signingKey).update(toSign).digest("hex");
  const res = await fetch(url, {
    method: "PUT",
    body,
    headers: {
      "x-amz-content-sha256": payload,
      "x-amz-date": date,
      authorization: `AWS4-HMAC-SHA256 Credential=${S3_ACCESS_KEY}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
    },
  });
  assert.equal(res.status, 200, `PUT ${key}: ${res.status} ${await res.text()}`);
}

async function storage() {
  return (await stats(ADMIN_KEY)).storage;
}

test("a deletion storage refuses is kept and retried on the next run", async () => {
  const proxy = await faultyProxy();
  try {
    const bucket = await api("POST", "/v1/buckets", {
      key: ADMIN_KEY,
      json: { name: S3_BUCKET, provider: "s3", endpoint: proxy.url, region: "us-east-1" },
    });
    assert.equal(bucket.status, 201, bucket.text);
    const tenant = tenantName("retry");
    const { key } = await createKey(tenant);
    const route = await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket.data.id } });
    assert.equal(route.status, 200, route.text);
    const data = bytes(1500, "retry-");
    const up = await upload(key, { namespace: "direct", path: "gone.bin", data });
    assert.equal(up.complete?.status, 200, up.complete?.text ?? up.reserve.text);
    const object = `t/${tenant}/sha256/${sha256hex(data)}`;
    assert.ok(objectOnDisk(object));
    const queuedBefore = (await storage()).pending_deletes;

    // Storage refuses the delete: the file is gone for the tenant, the bytes wait for a retry.
    proxy.failDeletes = 1;
    const deleted = await api("DELETE", "/v1/files/direct/gone.bin", { key });
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal(proxy.deletesOf(object), 1);
    assert.ok(objectOnDisk(object), "refused: still stored");
    assert.equal((await storage()).pending_deletes, queuedBefore + 1);

    await scheduledRun();
    assert.equal(proxy.deletesOf(object), 2, "retried once");
    assert.equal(objectOnDisk(object), false, "the retry deleted the bytes");
    assert.equal((await storage()).pending_deletes, queuedBefore);
    const rows = (await logs(key)).filter((r) => r.operation === "reconcile_delete");
    assert.deepEqual(
      rows.map((r) => [r.path, r.sha256, r.bucket_id, r.success]),
      [[object, sha256hex(data), bucket.data.id, 1]],
    );
    // Nothing more to retry: the next run sends no DELETE.
    await scheduledRun();
    assert.equal(proxy.deletesOf(object), 2);
  } finally {
    await proxy.close();
  }
});

test("a queued deletion of bytes uploaded again meanwhile is dropped, not done", async () => {
  const proxy = await faultyProxy();
  try {
    const bucket = await api("POST", "/v1/buckets", {
      key: ADMIN_KEY,
      json: { name: S3_BUCKET, provider: "s3", endpoint: proxy.url, region: "us-east-1" },
    });
    assert.equal(bucket.status, 201, bucket.text);
    const tenant = tenantName("reclaim");
    const { key } = await createKey(tenant);
    await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket.data.id } });
    const data = bytes(1200, "reclaim-");
    const first = await upload(key, { namespace: "direct", path: "a.bin", data });
    assert.equal(first.complete?.status, 200, first.complete?.text);
    proxy.failDeletes = 1;
    assert.equal((await api("DELETE", "/v1/files/direct/a.bin", { key })).status, 200);
    // The same bytes come back before the retry: the object is theirs again.
    const again = await upload(key, { namespace: "direct", path: "b.bin", data });
    assert.ok([200, 201].includes(again.reserve.status), again.reserve.text);
    if (again.complete) assert.equal(again.complete.status, 200, again.complete.text);
    const object = `t/${tenant}/sha256/${sha256hex(data)}`;
    const deletesBefore = proxy.deletesOf(object);
    await scheduledRun();
    assert.equal(proxy.deletesOf(object), deletesBefore, "no DELETE of claimed bytes");
    await assertServes(key, "direct", "b.bin", data);
  } finally {
    await proxy.close();
  }
});

test("an object nobody claims is deleted only after its grace; claimed ones stay", async () => {
  const tenant = tenantName("orphan");
  const { key } = await createKey(tenant);
  const kept = bytes(800, "kept-");
  assert.equal((await upload(key, { path: "kept.bin", data: kept })).complete.status, 200);
  // An object under the tenant's prefix that no blob and no reservation claims.
  const orphan = bytes(900, "orphan-");
  const dir = mkdtempSync(join(tmpdir(), "locker-orphan-"));
  writeFileSync(join(dir, "orphan.bin"), orphan);
  const orphanKey = `t/${tenant}/sha256/${sha256hex(orphan)}`;
  const putAt = Date.now();
  await r2("put", `locker-blobs/${orphanKey}`, "--file", join(dir, "orphan.bin"));
  // Stored between `putAt` and `putDone` (wrangler takes seconds to start).
  const putDone = Date.now();
  assert.equal((await stats(key)).objects, 2);

  await scheduledRun();
  if (Date.now() - putAt < GRACE_MS) {
    assert.equal((await stats(key)).objects, 2, "within its grace the orphan stays");
  }
  await sleep(Math.max(0, putDone + GRACE_MS + 1500 - Date.now()));
  // Each run lists at most LOCKER_RECONCILE_BATCH objects and goes on from its cursor on the
  // next, so after the suite's other files (the CLI's 1,000 files among them) a whole pass takes
  // a few runs: run until the orphan is gone, a bounded number of times.
  for (let run = 0; run < 10 && (await stats(key)).objects > 1; run++) await scheduledRun();
  assert.equal((await stats(key)).objects, 1, "past its grace the orphan is deleted");
  await assertServes(key, "corp", "kept.bin", kept);
  const rows = (await logs(key)).filter((r) => r.operation === "reconcile_delete");
  assert.deepEqual(
    rows.map((r) => r.path),
    [orphanKey],
  );
});

test("in an S3 bucket too: an object nobody claims goes after its grace, claimed ones stay", async () => {
  const bucket = (await registerS3Bucket()).id;
  const tenant = tenantName("s3orphan");
  const { key } = await createKey(tenant);
  const route = await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket } });
  assert.equal(route.status, 200, route.text);
  const kept = bytes(850, "s3-kept-");
  const up = await upload(key, { namespace: "direct", path: "kept.bin", data: kept });
  assert.equal(up.complete?.status, 200, up.complete?.text ?? up.reserve.text);
  const keptKey = `t/${tenant}/sha256/${sha256hex(kept)}`;
  assert.ok(objectOnDisk(keptKey));
  // Put into the bucket past the Worker: no blob, no reservation claims it.
  const orphan = bytes(950, "s3-orphan-");
  const orphanKey = `t/${tenant}/sha256/${sha256hex(orphan)}`;
  const putAt = Date.now();
  await s3Put(orphanKey, orphan);
  assert.ok(objectOnDisk(orphanKey));

  await scheduledRun();
  if (Date.now() - putAt < GRACE_MS) {
    assert.ok(objectOnDisk(orphanKey), "within its grace the orphan stays");
  }
  await sleep(Math.max(0, putAt + GRACE_MS + 1500 - Date.now()));
  // One ListObjectsV2 page a bucket and run (LOCKER_RECONCILE_BATCH), on from its cursor.
  for (let run = 0; run < 10 && objectOnDisk(orphanKey); run++) await scheduledRun();
  assert.equal(objectOnDisk(orphanKey), false, "past its grace the orphan is deleted");
  assert.ok(objectOnDisk(keptKey), "the claimed object stays");
  await assertServes(key, "direct", "kept.bin", kept);
  const rows = (await logs(key)).filter((r) => r.operation === "reconcile_delete");
  assert.deepEqual(
    rows.map((r) => [r.path, r.bucket_id]),
    [[orphanKey, bucket]],
  );
});

test("an object claimed through one registration is no orphan through another of the same bucket", async () => {
  // Two registrations may name one physical bucket (here: s3s-fs directly and through a proxy,
  // as an operator might register another endpoint form of a bucket). Each orphan pass asks
  // whether the tenant claims the bytes in any bucket, so neither deletes what the other holds.
  const bucket = (await registerS3Bucket()).id;
  const tenant = tenantName("twoforms");
  const { key } = await createKey(tenant);
  assert.equal((await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket } })).status, 200);
  const data = bytes(780, "two-forms-");
  const up = await upload(key, { namespace: "direct", path: "kept.bin", data });
  assert.equal(up.complete?.status, 200, up.complete?.text ?? up.reserve.text);
  const object = `t/${tenant}/sha256/${sha256hex(data)}`;
  // Past its grace: only the claim keeps it.
  await sleep(GRACE_MS + 1500);
  const proxy = await faultyProxy();
  try {
    const second = await api("POST", "/v1/buckets", {
      key: ADMIN_KEY,
      json: { name: S3_BUCKET, provider: "s3", endpoint: proxy.url, region: "us-east-1" },
    });
    assert.equal(second.status, 201, second.text);
    for (let run = 0; run < 10 && !proxy.listedAll; run++) await scheduledRun();
    assert.ok(proxy.listedAll, "the second registration's orphan pass went over the whole bucket");
    assert.equal(proxy.deletesOf(object), 0, "no DELETE of the object the first registration claims");
    assert.ok(objectOnDisk(object));
    await assertServes(key, "direct", "kept.bin", data);
  } finally {
    await proxy.close();
  }
});

test("a blob whose object vanished is reported in stats and logged, and never deleted", async () => {
  const tenant = tenantName("vanished");
  const { key } = await createKey(tenant);
  const data = bytes(700, "vanish-");
  assert.equal((await upload(key, { path: "lost.bin", data })).complete.status, 200);
  const before = await storage();
  const object = `t/${tenant}/sha256/${sha256hex(data)}`;
  await r2("delete", `locker-blobs/${object}`);

  // The blob check, too, looks at LOCKER_RECONCILE_BATCH blobs a run, going on from its cursor:
  // with the suite's other blobs a whole pass takes a few runs.
  for (let run = 0; run < 10 && (await storage()).blobs_missing_object === before.blobs_missing_object; run++) {
    await scheduledRun();
  }
  const after = await storage();
  assert.equal(after.blobs_missing_object, before.blobs_missing_object + 1);
  const rows = (await logs(key)).filter((r) => r.operation === "reconcile_missing");
  assert.deepEqual(
    rows.map((r) => [r.path, r.sha256]),
    [[object, sha256hex(data)]],
  );
  // The registry keeps the file: the reconciler reports, an operator decides.
  const got = await api("GET", "/v1/files/corp/lost.bin", { key });
  assert.equal(got.status, 200, got.text);
  // A tenant's own stats carry no deployment-wide findings.
  assert.equal((await stats(key)).storage, undefined);

  // Once the blob is gone (the file deleted), it is no longer counted.
  assert.equal((await api("DELETE", "/v1/files/corp/lost.bin", { key })).status, 200);
  assert.equal((await storage()).blobs_missing_object, before.blobs_missing_object);
});
