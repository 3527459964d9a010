// Bad reservations are refused with a clear error and change nothing: paths, malformed
// requests, sizes and types.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { api, reserve, sha256hex, stats } from "./support/api.mjs";
import { refusalKey, refusedAs, reserveBody } from "./support/refusals.mjs";

let key;
let refused;
before(async () => {
  key = await refusalKey();
  refused = refusedAs(key);
});

test("traversal, backslashes, percent-escapes and control characters in paths are refused", async () => {
  const cases = [
    ["../etc/passwd", "invalid_ref"],
    ["a/../../b", "invalid_ref"],
    ["a/%2e%2e/b", "invalid_ref"],
    ["%2E%2E/b", "invalid_ref"],
    ["a\\b", "invalid_ref"],
    ["a\u0000b", "invalid_ref"],
    ["a\nb", "invalid_ref"],
    ["/abs", "invalid_ref"],
  ];
  for (const [path, code] of cases) {
    await refused(() => reserve(key, reserveBody({ path })), { status: 400, code });
  }
  await refused(() => reserve(key, reserveBody({ namespace: "../x" })), {
    status: 400,
    code: "invalid_ref",
  });
  // Through the gateway's URL: encoded backslash and control characters are decoded, then refused.
  await refused(
    () => api("PUT", "/api/files/corp/a%5cb.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
  await refused(
    () => api("PUT", "/api/files/corp/a%00b.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
  await refused(
    () =>
      api("PUT", "/api/files/corp/a%252e%252e/b.txt", { key, body: "x", headers: { "content-type": "text/plain" } }),
    { status: 400, code: "invalid_ref" },
  );
});

test("malformed requests are refused", async () => {
  await refused(
    () => api("POST", "/v1/uploads", { key, body: "{not json", headers: { "content-type": "application/json" } }),
    { status: 400, code: "invalid_json" },
  );
  await refused(() => reserve(key, reserveBody({ sha256: "ABC" })), {
    status: 400,
    code: "invalid_sha256",
  });
  await refused(() => reserve(key, reserveBody({ content_type: "text/plain; charset=utf-8" })), {
    status: 400,
    code: "invalid_content_type",
  });
  await refused(() => reserve(key, { ...reserveBody(), surprise: 1 }), {
    status: 400,
    code: "invalid_json",
  });
  await refused(() => reserve(key, reserveBody({ filename: "a/b" })), {
    status: 400,
    code: "invalid_filename",
  });
});

test("oversize and disallowed types are refused with the limit in the message", async () => {
  const big = await refused(() => reserve(key, reserveBody({ size: 1_000_001 })), {
    status: 413,
    code: "too_large",
  });
  assert.match(big.data.error.message, /1000000/);
  await refused(() => reserve(key, reserveBody({ content_type: "application/zip" })), {
    status: 415,
    code: "type_not_allowed",
  });
  // Declared PNG, bytes are HTML: refused at complete from the stored bytes' magic number.
  const html = Buffer.from("<html><script>alert(1)</script></html>");
  const r = await reserve(key, {
    namespace: "corp",
    path: "fake.png",
    sha256: sha256hex(html),
    size: html.length,
    content_type: "image/png",
  });
  assert.equal(r.status, 201, r.text);
  const put = await api("PUT", r.data.url, { body: html, headers: r.data.headers });
  assert.equal(put.status, 201);
  const before = await stats(key);
  const done = await api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
  assert.equal(done.status, 422, done.text);
  assert.equal(done.data.error.code, "content_mismatch");
  const after = await stats(key);
  assert.equal(after.files, before.files);
  assert.equal(after.blobs, before.blobs);
  assert.equal(after.objects, before.objects - 1, "the refused bytes are removed");
});
