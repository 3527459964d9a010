// The original gateway API (/api/files, /api/signed-url) over plain HTTP against the real Worker.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { api, bytes, createKey, sha256hex, stats, tenantName } from "./support/api.mjs";

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
