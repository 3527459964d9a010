// Refusal checks shared by the api-*-refusals tests: bad input gets a clear error and changes
// nothing. Each refusal is checked for its status and error code, for an unchanged registry
// and storage (files, blobs, reservations, R2 objects, via /v1/stats), and for exactly one
// `denied` or `failed` access-log row.
import assert from "node:assert/strict";
import { createKey, logs, sha256hex, stats, stored, tenantName } from "./api.mjs";

/** A fresh tenant's key with the limits the refusal tests run into (1 MB; text, PNG, bytes). */
export async function refusalKey() {
  const tenant = tenantName("bad");
  return (await createKey(tenant, { max_size: 1_000_000, types: ["text/*", "image/png", "application/octet-stream"] }))
    .key;
}

/**
 * `refused(act, {status, code, logged})` for the tenant of `key`: runs `act`, checks its
 * refusal, and that it changed nothing but one log row (none when `logged` is null).
 */
export function refusedAs(key) {
  return async function refused(act, { status, code, logged = "failed" }) {
    const before = await stats(key);
    const lastId = (await logs(key))[0]?.id ?? 0;
    const res = await act();
    assert.equal(res.status, status, res.text);
    assert.equal(res.data.error.code, code, res.text);
    assert.equal(typeof res.data.error.message, "string");
    const after = await stats(key);
    assert.deepEqual(stored(after), stored(before), "registry or storage changed");
    const rows = (await logs(key)).filter((r) => r.id > lastId && !["stats", "logs"].includes(r.operation));
    if (logged) {
      assert.equal(rows.length, 1, JSON.stringify(rows));
      assert.equal(rows[0].operation, logged);
      assert.equal(rows[0].success, 0);
      assert.ok(rows[0].error.includes(String(status)));
    }
    return res;
  };
}

/** A valid reservation body for a small text file, with `over` applied. */
export function reserveBody(over = {}) {
  const data = Buffer.from("some text");
  return {
    namespace: "corp",
    path: "ok.txt",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "text/plain",
    ...over,
  };
}
