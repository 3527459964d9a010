// GET /healthz against the real Worker, local D1 and R2, and that no other route answers like it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";

test("GET /healthz reports D1 and R2 round-trips", async () => {
  const res = await fetch(`${BASE}/healthz`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.equal(body.status, "ok");
  assert.equal(body.server, "local");
  assert.equal(body.d1.ok, true);
  // The migrations ran: the buckets table exists and was counted.
  assert.match(body.d1.detail, /^\d+ bucket\(s\) registered$/);
  assert.equal(body.r2.ok, true);
  assert.equal(typeof body.version, "string");
});

test("an unknown route is not a health answer", async () => {
  const res = await fetch(`${BASE}/no-such-route`);
  assert.equal(res.status, 404);
});
