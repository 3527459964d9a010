// Upload URLs bind their bytes: other bytes, another size, a tampered, expired or replayed URL
// are refused and store nothing.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, reserve, upload } from "./support/api.mjs";
import { refusalKey, refusedAs } from "./support/refusals.mjs";

let key;
let refused;
before(async () => {
  key = await refusalKey();
  refused = refusedAs(key);
});

/** Reserves `data` at a fresh path of corp, which must succeed; returns the reservation. */
async function reserveNew(data, over = {}) {
  const res = await reserve(key, { path: `r/${Math.random()}.bin`, data, ...over });
  assert.equal(res.status, 201, res.text);
  return res.data;
}

test("a body with other bytes is refused by R2's checksum and nothing is stored", async () => {
  const data = bytes(5000);
  const r = await reserveNew(data);
  await refused(() => api("PUT", r.url, { body: bytes(5000), headers: r.headers }), {
    status: 400,
    code: "sha256_mismatch",
  });
  const done = await api("POST", `/v1/uploads/${r.upload_id}/complete`, { key });
  assert.equal(done.status, 409);
  assert.equal(done.data.error.code, "not_uploaded");
});

test("a body of another size is refused before it is read", async () => {
  const data = bytes(5000);
  const r = await reserveNew(data);
  await refused(() => api("PUT", r.url, { body: data.subarray(0, 4999), headers: r.headers }), {
    status: 400,
    code: "size_mismatch",
  });
  await refused(() => api("PUT", r.url, { body: Buffer.concat([data, Buffer.from("x")]), headers: r.headers }), {
    status: 400,
    code: "size_mismatch",
  });
});

test("a tampered URL is refused", async () => {
  const data = bytes(100);
  const r = await reserveNew(data);
  const url = new URL(r.url);
  const sig = url.searchParams.get("sig");
  const [payload, mac] = sig.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  claims.size = 101;
  url.searchParams.set("sig", `${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${mac}`);
  await refused(() => api("PUT", url.href, { body: Buffer.concat([data, Buffer.from("x")]), headers: r.headers }), {
    status: 403,
    code: "bad_signature",
    logged: "denied",
  });
  // The signature of one upload does not open another.
  const other = await reserveNew(bytes(100));
  const swapped = r.url.replace(r.upload_id, other.upload_id);
  await refused(() => api("PUT", swapped, { body: data, headers: r.headers }), {
    status: 403,
    code: "forbidden",
    logged: "denied",
  });
  // A flipped bit in the MAC.
  const flipped = r.url.slice(0, -2) + (r.url.endsWith("A") ? "BB" : "AA");
  await refused(() => api("PUT", flipped, { body: data, headers: r.headers }), {
    status: 403,
    code: "bad_signature",
    logged: "denied",
  });
});

test("an expired URL is refused", async () => {
  const data = bytes(100);
  const r = await reserveNew(data, { expires_in: 1 });
  await new Promise((ok) => setTimeout(ok, 2100));
  await refused(() => api("PUT", r.url, { body: data, headers: r.headers }), {
    status: 403,
    code: "expired",
    logged: "denied",
  });
});

test("a replayed URL is refused once the upload completed", async () => {
  const data = bytes(100);
  const { reserve: r, complete } = await upload(key, { path: "replay.bin", data });
  assert.equal(complete.status, 200);
  await refused(() => api("PUT", r.data.url, { body: data, headers: r.data.headers }), {
    status: 409,
    code: "upload_closed",
  });
});
