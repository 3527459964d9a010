// The access log: one row per operation, never a secret, filters by operation and time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, createKey, logs, reserve, sha256hex, tenantName, upload } from "./support/api.mjs";

test("the access log holds exactly one row per operation, and never a secret", async () => {
  const own = await createKey(tenantName("log"));
  const k = own.key;
  const data = bytes(500);
  const { reserve: first } = await upload(k, { path: "log/a.bin", data });
  await reserve(k, {
    namespace: "corp",
    path: "log/b.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  const meta = await api("GET", "/v1/files/corp/log/a.bin", { key: k });
  await fetch(meta.data.url);
  await api("DELETE", "/v1/files/corp/log/b.bin", { key: k });
  await api("GET", "/v1/files/corp/log/missing.bin", { key: k });
  await reserve(k, { namespace: "corp", path: "../x", sha256: sha256hex(data), size: 1, content_type: "text/plain" });

  const rows = (await logs(k)).reverse();
  assert.deepEqual(
    rows.map((r) => [r.operation, r.path, r.success]),
    [
      ["key_create", null, 1],
      ["reserve", "log/a.bin", 1],
      ["upload", "log/a.bin", 1],
      ["complete", "log/a.bin", 1],
      ["dedup", "log/b.bin", 1],
      ["stat", "log/a.bin", 1],
      ["download", null, 1],
      ["delete", "log/b.bin", 1],
      ["failed", "log/missing.bin", 0],
      ["failed", "../x", 0],
    ],
  );
  const upload_row = rows[2];
  assert.equal(upload_row.bytes, 500);
  assert.equal(upload_row.sha256, sha256hex(data));
  assert.equal(upload_row.server, "local");
  assert.equal(upload_row.key_id, null, "the data plane is authorized by signature, not by a key");
  assert.equal(rows[0].key_id, "bootstrap");
  assert.equal(rows[3].key_id, own.id);
  assert.equal(rows[6].bytes, 500);
  assert.match(rows[1].bucket_id, /^[0-9a-f]{64}$/);
  const text = JSON.stringify(rows);
  const sig = new URL(first.data.url).searchParams.get("sig");
  assert.ok(!text.includes(sig.split(".")[1]), "a signature leaked into the log");
  assert.ok(!text.includes(k.split(".")[1]), "a key secret leaked into the log");
  // Filters: by operation and by time.
  const completes = await logs(k, "&operation=complete");
  assert.equal(completes.length, 1);
  const later = await logs(k, `&since=${rows.at(-1).ts + 1}`);
  assert.ok(later.every((r) => r.ts > rows.at(-1).ts));
});
