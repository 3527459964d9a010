// CORS: configured origins get answers and preflights, others nothing.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { BASE } from "./support/env.mjs";
import { createKey, tenantName } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("gw"))).key;
});

test("CORS: configured origins get answers and preflights, others get no CORS headers", async () => {
  const origin = process.env.LOCKER_CORS_ORIGIN;
  const pre = await fetch(`${BASE}/v1/uploads`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), origin);
  assert.match(pre.headers.get("access-control-allow-headers"), /authorization/);
  const res = await fetch(`${BASE}/v1/files?namespace=corp`, { headers: { origin, authorization: `Bearer ${key}` } });
  assert.equal(res.headers.get("access-control-allow-origin"), origin);
  const evil = await fetch(`${BASE}/v1/files?namespace=corp`, {
    headers: { origin: "https://evil.example", authorization: `Bearer ${key}` },
  });
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
});
