// Upload tokens for browsers: within their namespace, prefix, size and types, and dead with
// the key that minted them.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { api, createKey, reserve, sha256hex, tenantName, upload } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("gw"))).key;
});

test("upload tokens let a browser upload within their namespace, prefix, size and types only", async () => {
  const minted = await api("POST", "/v1/tokens", {
    key,
    json: { namespace: "deck", path_prefix: "u/42/", max_size: 1000, types: ["image/png", "text/*"], ttl: 60 },
  });
  assert.equal(minted.status, 201, minted.text);
  const token = minted.data.token;
  assert.match(token, /^lkt_/);

  const ok = await upload(token, {
    namespace: "deck",
    path: "u/42/note.txt",
    data: Buffer.from("hello"),
    contentType: "text/plain",
  });
  assert.equal(ok.complete.status, 200, ok.complete.text);
  const cases = [
    [{ namespace: "corp", path: "u/42/a.txt" }, 403],
    [{ namespace: "deck", path: "u/43/a.txt" }, 403],
    [{ namespace: "deck", path: "u/42/a.zip", content_type: "application/zip" }, 415],
    [{ namespace: "deck", path: "u/42/big.txt", size: 1001 }, 413],
  ];
  for (const [over, status] of cases) {
    const res = await reserve(token, {
      sha256: sha256hex(Buffer.from("x")),
      size: 1,
      content_type: "text/plain",
      ...over,
    });
    assert.equal(res.status, status, `${JSON.stringify(over)}: ${res.text}`);
  }
  // A token cannot read, list, mint tokens or manage keys.
  assert.equal((await api("GET", "/v1/files?namespace=deck", { key: token })).status, 403);
  assert.equal((await api("POST", "/v1/tokens", { key: token, json: { namespace: "deck" } })).status, 403);
  assert.equal((await api("POST", "/v1/keys", { key: token, json: { namespaces: ["*"], ops: ["read"] } })).status, 403);
  // A token cannot outgrow the key that mints it.
  const limited = await api("POST", "/v1/keys", {
    key,
    json: { namespaces: ["deck"], ops: ["write"], max_size: 10, types: ["text/plain"] },
  });
  const wider = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck", max_size: 11 } });
  assert.equal(wider.status, 413, wider.text);
  const otherType = await api("POST", "/v1/tokens", {
    key: limited.data.key,
    json: { namespace: "deck", types: ["image/*"] },
  });
  assert.equal(otherType.status, 415, otherType.text);
  // Revoking the minting key kills its tokens; an expired token is refused.
  const child = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck", ttl: 1 } });
  assert.equal(child.status, 201);
  await new Promise((ok) => setTimeout(ok, 1100));
  const expired = await reserve(child.data.token, {
    namespace: "deck",
    path: "x.txt",
    sha256: sha256hex(Buffer.from("x")),
    size: 1,
    content_type: "text/plain",
  });
  assert.equal(expired.status, 403);
  assert.equal(expired.data.error.code, "expired");
  const fresh = await api("POST", "/v1/tokens", { key: limited.data.key, json: { namespace: "deck" } });
  await api("DELETE", `/v1/keys/${limited.data.id}`, { key });
  const dead = await reserve(fresh.data.token, {
    namespace: "deck",
    path: "x.txt",
    sha256: sha256hex(Buffer.from("x")),
    size: 1,
    content_type: "text/plain",
  });
  assert.equal(dead.status, 401, dead.text);
});
