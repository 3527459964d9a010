// `locker put` of a file in parts, through the Worker's data plane and straight to the suite's
// S3 server (s3s-fs), then `locker get` back byte-equal. `--multipart-threshold` lowers the
// client's threshold so a 20 MiB file is cut into the planner's three parts (8 + 8 + 4 MiB and a
// few bytes) instead of taking a 64 MiB file through a loaded test machine; the Worker accepts
// parts for any non-empty file the reservation asks them for.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { api, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { locker, scratch } from "./support/cli.mjs";
import { registerS3Bucket } from "./support/s3.mjs";

const MIB = 1024 * 1024;
let bucket;

before(async () => {
  bucket = await registerS3Bucket();
});

async function roundTrip(key, label) {
  const dir = scratch(label);
  // Random bytes: a part sent at the wrong offset or twice cannot produce the same digest.
  const data = randomBytes(20 * MIB + 12_345);
  writeFileSync(join(dir, "big.bin"), data);

  const put = await locker(
    [
      "put",
      join(dir, "big.bin"),
      "locker://corp/big/",
      "--multipart-threshold",
      String(MIB),
      "--part-concurrency",
      "2",
      "--json",
    ],
    { key },
  );
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.json.stored, 1, put.stdout);
  const [file] = put.json.files;
  assert.equal(file.ref, "locker://corp/big/big.bin");
  assert.equal(file.sha256, sha256hex(data));
  assert.equal(file.size, data.length);
  assert.equal(file.bytes_sent, data.length, "each part sent once");

  const got = await locker(["get", "locker://corp/big/big.bin", join(dir, "back.bin")], { key });
  assert.equal(got.code, 0, got.stderr);
  assert.ok(readFileSync(join(dir, "back.bin")).equals(data), "the stored bytes are the file's");

  // The same bytes again are a dedup: nothing is sent, no parts are asked for.
  const again = await locker(
    ["put", join(dir, "big.bin"), "locker://corp/copy/", "--multipart-threshold", String(MIB), "--json"],
    { key },
  );
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.deduplicated, 1);
  assert.equal(again.json.files[0].bytes_sent, 0);
}

test("locker put sends a file in parts through the Worker; get returns the same bytes", async () => {
  const { key } = await createKey(tenantName("cli-mp-worker"));
  await roundTrip(key, "mp-worker");
});

test("locker put sends a file in parts straight to S3; get returns the same bytes", async () => {
  const { key } = await createKey(tenantName("cli-mp-s3"));
  const route = await api("PUT", "/v1/routes/corp", { key, json: { bucket_id: bucket.id } });
  assert.equal(route.status, 200, route.text);
  await roundTrip(key, "mp-s3");
});
