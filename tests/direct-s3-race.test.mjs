// complete and abort of the same s3 upload racing each other: the registry and the bytes on the
// S3 server must agree whichever wins.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, stats } from "./support/api.mjs";
import { directBucket, objectKey, reserveDirect, routedTenant } from "./support/direct.mjs";
import { objectOnDisk } from "./support/s3.mjs";

const s3 = directBucket();

test("complete and abort racing each other leave the registry and the storage agreeing", async () => {
  // The two orders are both fine; what must never happen is a file whose bytes were deleted,
  // or bytes kept for nothing. The delays move the abort through complete's verification.
  const { tenant, key } = await routedTenant(s3.bucket, "race");
  const seen = new Set();
  for (const delay of [0, 30, 120, 400, 3000]) {
    const data = bytes(24 * 1024 * 1024, `race-${delay}-`);
    const path = `race/${delay}.bin`;
    const r = await reserveDirect(key, data, { path });
    assert.equal(r.status, 201, r.text);
    assert.equal((await fetch(r.data.url, { method: "PUT", headers: r.data.headers, body: data })).status, 200);
    const completing = api("POST", `/v1/uploads/${r.data.upload_id}/complete`, { key });
    await new Promise((resolve) => setTimeout(resolve, delay));
    const abort = await api("DELETE", `/v1/uploads/${r.data.upload_id}`, { key });
    const complete = await completing;
    const file = await api("GET", `/v1/files/direct/${path}`, { key });
    const stored = objectOnDisk(objectKey(tenant, data));
    const outcome = [complete.status, abort.status, file.status, stored];
    seen.add(`${outcome.join(" ")} (${complete.data?.error?.message ?? "completed"})`);
    assert.ok(
      [
        [200, 409, 200, true], // completed first: the abort is refused
        [409, 200, 404, false], // aborted first: nothing committed, the bytes removed
      ].some((ok) => ok.join(" ") === outcome.join(" ")),
      `complete ${complete.status} (${complete.data?.error?.code ?? "ok"}), abort ${abort.status}, file ${file.status}, bytes kept: ${stored}`,
    );
  }
  console.log(`  outcomes seen: ${[...seen].join(" | ")}`);
  const s = await stats(key);
  assert.deepEqual(Object.values(s.integrity), [0, 0, 0, 0]);
});
