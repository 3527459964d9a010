// Reservations nobody completes: the scheduled sweep (the Worker's cron handler, run on demand
// through wrangler dev's /__scheduled) expires them once their URL has been expired for the
// grace period (xtask sets LOCKER_COMPLETE_GRACE_S=1 for this run), and deletes their bytes
// unless a blob or another pending reservation claims them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BASE } from "./support/env.mjs";
import { api, bytes, createKey, logs, reserve, sha256hex, stats, tenantName, upload } from "./support/api.mjs";

// The URL life of the reservations the sweep should expire. Expiry is in whole seconds from
// the reserve's clock, so a URL of 1 s can be dead before a loaded machine sends its PUT.
const TTL = 3;

async function sweep() {
  const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  assert.equal(res.status, 200, await res.text());
}

test("a reservation nobody completes expires; its bytes go, bytes a file uses stay", async () => {
  const { key } = await createKey(tenantName("expiry"));
  // Uploaded but never completed: these bytes belong to nobody.
  const lost = bytes(3000, "lost-");
  const a = await reserve(key, { path: "lost.bin", data: lost, expires_in: TTL });
  assert.equal(a.status, 201, a.text);
  assert.equal((await api("PUT", a.data.url, { body: lost, headers: a.data.headers })).status, 201);
  // A reservation for bytes another upload then completes: they stay, the file uses them.
  const shared = bytes(2000, "shared-");
  const b1 = await reserve(key, { path: "first-try.bin", data: shared, expires_in: TTL });
  assert.equal(b1.status, 201, b1.text);
  const b2 = await upload(key, { path: "kept.bin", data: shared });
  assert.equal(b2.complete.status, 200, b2.complete.text);
  // Still within its URL's life: left alone.
  const fresh = bytes(1000, "fresh-");
  const c = await reserve(key, { path: "fresh.bin", data: fresh, expires_in: 3600 });
  assert.equal((await api("PUT", c.data.url, { body: fresh, headers: c.data.headers })).status, 201);

  const before = await stats(key);
  assert.deepEqual(before.uploads, { pending: 3, committed: 1, aborted: 0, expired: 0 });
  assert.equal(before.objects, 3);
  await sleep((TTL + 1) * 1000 + 1500); // URL life + grace (1 s), and a margin
  await sweep();

  const after = await stats(key);
  assert.deepEqual(after.uploads, { pending: 1, committed: 1, aborted: 0, expired: 2 });
  assert.equal(after.objects, 2, "the unclaimed bytes are deleted, the used ones kept");
  const late = await api("POST", `/v1/uploads/${a.data.upload_id}/complete`, { key });
  assert.equal(late.status, 409, late.text);
  assert.equal(late.data.error.code, "upload_closed");
  const got = await api("GET", "/v1/files/corp/kept.bin", { key });
  assert.equal(got.status, 200, got.text);
  const kept = await fetch(got.data.url);
  assert.equal(sha256hex(Buffer.from(await kept.arrayBuffer())), sha256hex(shared));

  // The one still in time completes normally; a second sweep finds nothing more to do.
  assert.equal((await api("POST", `/v1/uploads/${c.data.upload_id}/complete`, { key })).status, 200);
  await sweep();
  assert.deepEqual((await stats(key)).uploads, { pending: 0, committed: 2, aborted: 0, expired: 2 });

  // One access-log row per expiry, naming what expired.
  const rows = (await logs(key)).filter((r) => r.operation === "expire");
  assert.deepEqual(rows.map((r) => [r.path, r.success]).sort(), [
    ["first-try.bin", 1],
    ["lost.bin", 1],
  ]);
});
