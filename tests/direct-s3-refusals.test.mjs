// What the S3 server itself refuses on a presigned upload URL (other bytes, another length, a
// tampered or expired signature), and that nothing of it is committed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, stats } from "./support/api.mjs";
import { directBucket, objectKey, reserveDirect, routedTenant } from "./support/direct.mjs";
import { objectOnDisk } from "./support/s3.mjs";

const s3 = directBucket();

test("the S3 server refuses other bytes, another length, a tampered or an expired URL; nothing is committed", async () => {
  const { tenant, key } = await routedTenant(s3.bucket, "refuse3");
  const data = bytes(4096, "s3-refuse-");

  // Other bytes of the same length: the server refuses the checksum (and s3s-fs keeps the
  // bytes anyway), so complete must find out from the stored bytes and take them back.
  const wrong = await reserveDirect(key, data);
  const other = bytes(4096, "imposter-");
  const put1 = await fetch(wrong.data.url, { method: "PUT", headers: wrong.data.headers, body: other });
  assert.equal(put1.status, 400);
  assert.match(await put1.text(), /BadDigest/);
  const c1 = await api("POST", `/v1/uploads/${wrong.data.upload_id}/complete`, { key });
  assert.equal(c1.status, 422, c1.text);
  assert.ok(!objectOnDisk(objectKey(tenant, data)));

  // Another length: the signed content-length does not match.
  const short = await reserveDirect(key, data);
  const put2 = await fetch(short.data.url, { method: "PUT", headers: short.data.headers, body: data.subarray(1) });
  assert.equal(put2.status, 403);
  assert.equal((await api("POST", `/v1/uploads/${short.data.upload_id}/complete`, { key })).status, 409);

  // Tampered signature.
  const tampered = await reserveDirect(key, data);
  const url = tampered.data.url.replace(
    /X-Amz-Signature=([0-9a-f])/,
    (_, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
  );
  const put3 = await fetch(url, { method: "PUT", headers: tampered.data.headers, body: data });
  assert.equal(put3.status, 403);
  assert.match(await put3.text(), /SignatureDoesNotMatch/);

  // Expired.
  const late = await reserveDirect(key, data, { expires_in: 1 });
  await new Promise((r) => setTimeout(r, 2100));
  const put4 = await fetch(late.data.url, { method: "PUT", headers: late.data.headers, body: data });
  assert.equal(put4.status, 403);

  assert.ok(!objectOnDisk(objectKey(tenant, data)));
  const s = await stats(key);
  assert.equal(s.files, 0);
  assert.equal(s.blobs, 0);
  assert.equal(s.uploads.committed, 0);
});
