// The verification policy of s3 buckets (`verify`): `read_back` (the default) reads a stored
// object back and hashes it at complete; `checksum` takes the SHA-256 the server reports to a
// HEAD with checksum mode, and reads back when it reports none or another. Against the real
// s3s-fs, each policy in a registration of its own behind a proxy that counts what the Worker
// asks the server (s3s-fs does not qualify for `checksum`, see README: it is registered so only
// to exercise the path).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, api, bytes, sha256hex } from "./support/api.mjs";
import { locker, scratch } from "./support/cli.mjs";
import { directBucket, objectKey, reserveDirect, routedTenant } from "./support/direct.mjs";
import { S3_BUCKET, corsProxy, objectOnDisk } from "./support/s3.mjs";

const MIB = 1024 * 1024;
/** locker_core::validate::SNIFF_LEN: the leading bytes complete reads for the magic number. */
const SNIFF = "bytes=0-15";

const readBack = directBucket();
const checked = {};
before(async () => {
  // The checksum registration goes through the CLI's `buckets add --verify checksum`.
  checked.proxy = await corsProxy();
  const add = await locker(
    [
      "buckets",
      "add",
      S3_BUCKET,
      "--provider",
      "s3",
      "--endpoint",
      checked.proxy.url,
      "--verify",
      "checksum",
      "--json",
    ],
    { key: ADMIN_KEY },
  );
  assert.equal(add.code, 0, add.stderr);
  checked.bucket = add.json;
});
after(() => checked.proxy?.close());

/** Reserves `data` and PUTs `body` (default: `data`) to the signed URL; the PUT's status. */
async function put(key, data, body = data, path = "a/file.bin") {
  const r = await reserveDirect(key, data, { path, multipart: false });
  assert.equal(r.status, 201, r.text);
  const sent = await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body });
  await sent.arrayBuffer();
  return { id: r.data.upload_id, status: sent.status };
}

/** What the Worker asked the server while `work` ran: its HEADs and GETs. */
async function asked(proxy, work) {
  const from = proxy.seen.length;
  const answer = await work();
  const seen = proxy.seen.slice(from);
  return {
    answer,
    heads: seen.filter((r) => r.method === "HEAD"),
    gets: seen.filter((r) => r.method === "GET"),
  };
}

/** A GET that reads more than the leading bytes: a read-back. */
const readsBack = (gets) => gets.filter((g) => g.range !== SNIFF);

test("GET /v1/buckets shows each bucket's policy: read_back by default, checksum as registered, null for the worker transport", async () => {
  assert.equal(readBack.bucket.verify, "read_back");
  assert.equal(checked.bucket.verify, "checksum");
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  assert.equal(listed.status, 200, listed.text);
  const by = Object.fromEntries(listed.data.buckets.map((b) => [b.id, b]));
  assert.equal(by[readBack.bucket.id].verify, "read_back");
  assert.equal(by[checked.bucket.id].verify, "checksum");
  for (const b of listed.data.buckets.filter((b) => b.transport === "worker")) assert.equal(b.verify, null);
  const plain = await locker(["buckets", "ls"], { key: ADMIN_KEY });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, new RegExp(`${checked.bucket.id} .* checksum +${S3_BUCKET}`));
});

test("registering with a bad policy value is 400 and writes nothing", async () => {
  const proxy = await corsProxy();
  try {
    const before = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
    const attempts = [
      [{ name: S3_BUCKET, provider: "s3", endpoint: proxy.url, verify: "trust" }, "invalid_bucket"],
      [{ name: S3_BUCKET, provider: "s3", endpoint: proxy.url, verify: "" }, "invalid_bucket"],
      [{ name: S3_BUCKET, provider: "s3", endpoint: proxy.url, verify: true }, "invalid_json"],
      // The worker transport has no policy to choose: R2 checks every write itself.
      [
        { name: "locker-blobs-2", provider: "r2", account_id: "local", binding: "BLOBS", verify: "checksum" },
        "invalid_bucket",
      ],
    ];
    for (const [json, code] of attempts) {
      const res = await api("POST", "/v1/buckets", { key: ADMIN_KEY, json });
      assert.equal(res.status, 400, `${JSON.stringify(json)}: ${res.text}`);
      assert.equal(res.data.error.code, code, res.text);
    }
    const cli = await locker(
      ["buckets", "add", S3_BUCKET, "--provider", "s3", "--endpoint", proxy.url, "--verify", "trust"],
      {
        key: ADMIN_KEY,
      },
    );
    assert.equal(cli.code, 2, cli.stderr);
    const now = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
    assert.deepEqual(now.data, before.data);
    assert.deepEqual(proxy.seen, []);
  } finally {
    await proxy.close();
  }
});

test("a checksum bucket commits a single PUT from the server's checksum, without reading it back; read_back reads it", async () => {
  const data = bytes(3 * MIB, "verify-ok-");
  for (const [s3, label] of [
    [checked, "checksum"],
    [readBack, "read_back"],
  ]) {
    const { key } = await routedTenant(s3.bucket, `verify-ok-${label.replace("_", "-")}`);
    const { id, status } = await put(key, data);
    assert.equal(status, 200);
    const { answer, heads, gets } = await asked(s3.proxy, () => api("POST", `/v1/uploads/${id}/complete`, { key }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.data.sha256, sha256hex(data));
    if (label === "checksum") {
      // One HEAD that asks for the checksum, the 16 leading bytes for the magic number: no read.
      assert.deepEqual(
        heads.map((h) => h.checksumMode),
        ["ENABLED"],
      );
      assert.deepEqual(
        gets.map((g) => g.range),
        [SNIFF],
      );
    } else {
      assert.deepEqual(
        heads.map((h) => h.checksumMode),
        [undefined],
      );
      assert.equal(readsBack(gets).length, 1, JSON.stringify(gets));
    }
    const file = await api("GET", "/v1/files/direct/a/file.bin", { key });
    assert.equal(file.status, 200, file.text);
    const served = Buffer.from(await (await fetch(file.data.url)).arrayBuffer());
    assert.equal(sha256hex(served), sha256hex(data));
  }
});

test("the batch complete takes a checksum bucket's report too", async () => {
  const { key } = await routedTenant(checked.bucket, "verify-batch");
  const files = [bytes(2 * MIB, "verify-b1-"), bytes(2 * MIB, "verify-b2-")];
  const ids = [];
  for (const [i, data] of files.entries()) {
    const { id, status } = await put(key, data, data, `b/${i}.bin`);
    assert.equal(status, 200);
    ids.push(id);
  }
  const { answer, heads, gets } = await asked(checked.proxy, () =>
    api("POST", "/v1/uploads:complete", { key, json: { upload_ids: ids } }),
  );
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(
    answer.data.results.map((r) => r.status),
    ["complete", "complete"],
  );
  assert.equal(heads.length, 2);
  assert.ok(heads.every((h) => h.checksumMode === "ENABLED"));
  assert.deepEqual(readsBack(gets), []);
});

test("wrong bytes are refused 422 and deleted on both policies (the server reports no checksum for them)", async () => {
  for (const [s3, label, size] of [
    [checked, "checksum", 3 * MIB],
    [readBack, "read_back", 3 * MIB],
    // Read back in ranged GETs side by side (32 MiB and more).
    [checked, "checksum-ranged", 40 * MIB],
  ]) {
    const { tenant, key } = await routedTenant(s3.bucket, `verify-wrong-${label.replace("_", "-")}`);
    const data = bytes(size, `verify-wrong-${label}-`);
    const other = bytes(size, `imposter-${label}-`);
    const { id, status } = await put(key, data, other);
    // s3s-fs refuses the checksum, and keeps the bytes anyway.
    assert.equal(status, 400);
    assert.ok(objectOnDisk(objectKey(tenant, data)), label);
    const { answer, gets } = await asked(s3.proxy, () => api("POST", `/v1/uploads/${id}/complete`, { key }));
    assert.equal(answer.status, 422, `${label}: ${answer.text}`);
    assert.equal(answer.data.error.code, "sha256_mismatch");
    assert.ok(readsBack(gets).length >= 1, `${label}: the bytes were read back: ${JSON.stringify(gets)}`);
    if (size > 32 * MIB)
      assert.ok(
        gets.every((g) => g.range),
        "read in ranges",
      );
    assert.ok(!objectOnDisk(objectKey(tenant, data)), `${label}: the wrong bytes are gone`);
    const again = await api("POST", `/v1/uploads/${id}/complete`, { key });
    assert.equal(again.status, 409, again.text);
    assert.equal((await api("GET", "/v1/files/direct/a/file.bin", { key })).status, 404);
  }
});

test("a checksum bucket whose server reports another checksum is read back: right bytes commit", async () => {
  const { key } = await routedTenant(checked.bucket, "verify-other");
  const data = bytes(3 * MIB, "verify-other-");
  const { id, status } = await put(key, data);
  assert.equal(status, 200);
  // The server's answer to the HEAD names another digest (and, for another try, one of an
  // object in parts): not believed either way, the bytes decide.
  const other = Buffer.from(sha256hex(Buffer.from("other")), "hex").toString("base64");
  checked.proxy.alter = (req, headers) => {
    if (req.method === "HEAD") headers["x-amz-checksum-sha256"] = other;
  };
  try {
    const { answer, heads, gets } = await asked(checked.proxy, () =>
      api("POST", `/v1/uploads/${id}/complete`, { key }),
    );
    assert.equal(answer.status, 200, answer.text);
    assert.equal(heads.length, 1);
    assert.equal(readsBack(gets).length, 1, JSON.stringify(gets));
  } finally {
    checked.proxy.alter = null;
  }
  const parted = bytes(3 * MIB, "verify-parted-");
  const second = await put(key, parted, parted, "a/parted.bin");
  const reported = Buffer.from(sha256hex(parted), "hex").toString("base64");
  checked.proxy.alter = (req, headers) => {
    if (req.method === "HEAD") headers["x-amz-checksum-sha256"] = `${reported}-3`;
  };
  try {
    const { answer, gets } = await asked(checked.proxy, () =>
      api("POST", `/v1/uploads/${second.id}/complete`, { key }),
    );
    assert.equal(answer.status, 200, answer.text);
    assert.equal(readsBack(gets).length, 1, JSON.stringify(gets));
  } finally {
    checked.proxy.alter = null;
  }
});

test("left to the Worker, a file above the threshold is one request into a checksum bucket and parts into a read_back one", async () => {
  const size = 100 * MIB;
  const sha256 = sha256hex(Buffer.from("a 100 MiB file that is never sent"));
  const plans = [];
  for (const [s3, multipart] of [
    [checked, undefined],
    [checked, true],
    [checked, false],
    [readBack, undefined],
    [readBack, false],
  ]) {
    const { key } = await routedTenant(s3.bucket, "verify-plan");
    const r = await api("POST", "/v1/uploads", {
      key,
      json: { namespace: "direct", path: "p.bin", sha256, size, content_type: "application/octet-stream", multipart },
    });
    assert.equal(r.status, 201, r.text);
    plans.push(r.data.status);
    assert.equal((await api("DELETE", `/v1/uploads/${r.data.upload_id}`, { key })).status, 200);
  }
  assert.deepEqual(plans, ["upload", "multipart", "upload", "multipart", "upload"]);
  // Beyond what one request carries (5 GB), parts even there.
  const { key } = await routedTenant(checked.bucket, "verify-plan-huge");
  const huge = await api("POST", "/v1/uploads", {
    key,
    json: { namespace: "direct", path: "h.bin", sha256, size: 5_000_000_001, content_type: "application/octet-stream" },
  });
  assert.equal(huge.status, 201, huge.text);
  assert.equal(huge.data.status, "multipart");
  await api("DELETE", `/v1/uploads/${huge.data.upload_id}`, { key });
});

test("`locker put` of a 70 MiB file into a checksum bucket: one PUT, committed without a read-back", async () => {
  const { key } = await routedTenant(checked.bucket, "verify-cli");
  const dir = scratch("verify-cli");
  const data = bytes(70 * MIB, "verify-cli-");
  writeFileSync(join(dir, "big.bin"), data);
  const from = checked.proxy.seen.length;
  const put = await locker(["put", join(dir, "big.bin"), "locker://direct/cli/big.bin", "--json"], { key });
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.json.stored, 1, put.stdout);
  assert.equal(put.json.files[0].sha256, sha256hex(data));
  const seen = checked.proxy.seen.slice(from);
  const puts = seen.filter((r) => r.method === "PUT");
  assert.equal(puts.length, 1, JSON.stringify(puts));
  assert.doesNotMatch(puts[0].url, /partNumber|uploadId/);
  assert.deepEqual(readsBack(seen.filter((r) => r.method === "GET")), []);
  // An explicit threshold still means parts, whatever the bucket.
  const again = bytes(20 * MIB, "verify-cli-parts-");
  writeFileSync(join(dir, "parts.bin"), again);
  const before = checked.proxy.seen.length;
  const parts = await locker(
    ["put", join(dir, "parts.bin"), "locker://direct/cli/parts.bin", "--multipart-threshold", String(MIB), "--json"],
    { key },
  );
  assert.equal(parts.code, 0, parts.stderr);
  assert.equal(parts.json.stored, 1, parts.stdout);
  const sent = checked.proxy.seen.slice(before).filter((r) => r.method === "PUT");
  assert.equal(sent.length, 3, JSON.stringify(sent));
  assert.ok(sent.every((r) => /partNumber=/.test(r.url)));
});
