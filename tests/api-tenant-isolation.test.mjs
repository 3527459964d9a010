// Tenants are isolated: another tenant's files are invisible, untouchable and never a dedup source.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, createKey, reserve, sha256hex, stats, stored, tenantName, upload } from "./support/api.mjs";
import { refusalKey } from "./support/refusals.mjs";

let key;
before(async () => {
  key = await refusalKey();
});

test("another tenant can neither see, overwrite, delete, complete nor dedup against our files", async () => {
  const data = bytes(7777);
  const mine = await upload(key, { path: "secret/plan.bin", data });
  assert.equal(mine.complete.status, 200);
  const other = (await createKey(tenantName("other"))).key;
  const ourBefore = await stats(key);

  const look = await api("GET", "/v1/files/corp/secret/plan.bin", { key: other });
  assert.equal(look.status, 404);
  assert.equal(look.data.error.code, "not_found");
  const list = await api("GET", "/v1/files?namespace=corp", { key: other });
  assert.deepEqual(list.data.files, []);
  assert.equal((await api("DELETE", "/v1/files/corp/secret/plan.bin", { key: other })).status, 404);
  assert.equal((await api("POST", `/v1/uploads/${mine.reserve.data.upload_id}/complete`, { key: other })).status, 404);
  assert.equal((await api("DELETE", `/v1/uploads/${mine.reserve.data.upload_id}`, { key: other })).status, 404);
  assert.equal(
    (await api("POST", "/api/signed-url", { key: other, json: { path: "corp/secret/plan.bin" } })).status,
    404,
  );
  // The same bytes under the other tenant: not deduplicated (that would reveal we have them).
  const theirs = await reserve(other, {
    namespace: "corp",
    path: "secret/plan.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  assert.equal(theirs.status, 201, theirs.text);
  assert.equal(theirs.data.status, "upload");
  // Our view did not change, and a tenant admin cannot revoke the other tenant's keys.
  assert.deepEqual(stored(await stats(key)), stored(ourBefore));
  const theirKey = await api("POST", "/v1/keys", { key: other, json: { namespaces: ["*"], ops: ["read"] } });
  assert.equal((await api("DELETE", `/v1/keys/${theirKey.data.id}`, { key })).status, 404);
  assert.equal(
    (await api("POST", "/v1/keys", { key, json: { tenant: "someone-else", namespaces: ["*"], ops: ["read"] } })).status,
    403,
  );
});
