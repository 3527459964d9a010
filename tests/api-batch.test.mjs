// POST /v1/uploads:batch: many reservations in one request, each answered and logged as its
// own POST /v1/uploads, and rows written only for the items that were accepted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, api, bytes, logs, sha256hex, stats, tenantName, upload } from "./support/api.mjs";

const item = (path, data, extra = {}) => ({
  namespace: "corp",
  path,
  sha256: sha256hex(data),
  size: data.length,
  content_type: "application/octet-stream",
  ...extra,
});

const batch = (key, uploads) => api("POST", "/v1/uploads:batch", { key, json: { uploads } });

/** A tenant with an admin key (all namespaces) and a writer limited to `corp` and 1,000 bytes. */
async function tenant(label) {
  const name = tenantName(label);
  const mk = async (scopes) => {
    const res = await api("POST", "/v1/keys", { key: ADMIN_KEY, json: { tenant: name, ...scopes } });
    assert.equal(res.status, 201, res.text);
    return res.data.key;
  };
  const admin = await mk({ namespaces: ["*"], ops: ["read", "write", "delete", "admin"] });
  const writer = await mk({ namespaces: ["corp"], ops: ["read", "write"], max_size: 1000 });
  return { admin, writer };
}

test("a mixed batch: each item answered as alone, in order; rows only for the accepted ones", async () => {
  const { admin, writer } = await tenant("batch");
  const stored = bytes(300);
  const done = await upload(writer, { path: "b/stored.bin", data: stored });
  assert.equal(done.complete.status, 200, done.complete.text);
  const before = await stats(admin);
  const logBefore = (await logs(admin)).length;

  const fresh = [bytes(100), bytes(200)];
  const res = await batch(writer, [
    item("b/new-1.bin", fresh[0]),
    item("b/copy.bin", stored),
    item("b/bad-sha.bin", fresh[0], { sha256: "xyz" }),
    item("b/big.bin", bytes(10), { size: 5000 }),
    { ...item("b/out.bin", fresh[1]), namespace: "other" },
    { namespace: "corp", path: "b/half.bin" },
    item("b/wrong-size.bin", stored, { size: stored.length + 1 }),
    item("b/new-2.bin", fresh[1]),
  ]);
  assert.equal(res.status, 200, res.text);
  const r = res.data.results;
  assert.equal(r.length, 8);
  assert.deepEqual(
    r.map((x) => x.status ?? `${x.http_status} ${x.error.code}`),
    [
      "upload",
      "deduplicated",
      "400 invalid_sha256",
      "413 too_large",
      "403 forbidden",
      "400 invalid_json",
      "400 size_mismatch",
      "upload",
    ],
  );
  assert.equal(r[1].ref, "locker://corp/b/copy.bin");
  assert.notEqual(r[0].upload_id, r[7].upload_id);

  // Registry: two pending reservations and one more file (the dedup); nothing for the rest.
  const mid = await stats(admin);
  assert.equal(mid.uploads.pending, before.uploads.pending + 2);
  assert.equal(mid.files, before.files + 1);
  assert.equal(mid.blobs, before.blobs);

  // The reservations work like single ones: PUT the bytes, complete.
  for (const [i, data] of [
    [0, fresh[0]],
    [7, fresh[1]],
  ]) {
    const put = await api("PUT", r[i].url, { body: data, headers: r[i].headers });
    assert.ok(put.status === 201 || put.status === 200, put.text);
    const complete = await api("POST", `/v1/uploads/${r[i].upload_id}/complete`, { key: writer });
    assert.equal(complete.status, 200, complete.text);
  }
  const after = await stats(admin);
  assert.equal(after.files, before.files + 3);
  assert.equal(after.uploads.pending, before.uploads.pending);

  // One access-log row per item, as the single route writes them; none for the batch itself.
  // (Reading the log and the stats is logged too: those rows are left out.)
  const rows = (await logs(admin))
    .slice(0, -logBefore || undefined)
    .reverse()
    .filter((x) => x.operation !== "logs" && x.operation !== "stats");
  const perItem = rows.slice(0, 8);
  assert.deepEqual(
    perItem.map((x) => [x.operation, x.namespace, x.path, x.success]).sort(),
    [
      ["reserve", "corp", "b/new-1.bin", 1],
      ["dedup", "corp", "b/copy.bin", 1],
      ["failed", "corp", "b/bad-sha.bin", 0],
      ["failed", "corp", "b/big.bin", 0],
      ["denied", "other", "b/out.bin", 0],
      ["failed", null, null, 0],
      ["failed", "corp", "b/wrong-size.bin", 0],
      ["reserve", "corp", "b/new-2.bin", 1],
    ].sort(),
  );
  assert.ok(perItem.every((x) => x.key_id && x.key_id === perItem[0].key_id));
  assert.match(perItem.find((x) => x.path === "b/big.bin").error, /^413: /);
  // Then the PUTs and completes, and nothing else.
  assert.deepEqual(
    rows.slice(8).map((x) => x.operation),
    ["upload", "complete", "upload", "complete"],
  );
});

test("a batch envelope that is not one is refused whole, and writes nothing", async () => {
  const { admin, writer } = await tenant("batch-env");
  const before = await stats(admin);
  const one = item("e/a.bin", bytes(10));
  const cases = [
    [{ uploads: [] }, 400, "invalid_json"],
    [{ uploads: Array.from({ length: 101 }, (_, i) => item(`e/${i}.bin`, bytes(10))) }, 413, "too_large"],
    [{ uploads: [one], extra: 1 }, 400, "invalid_json"],
    [{ items: [one] }, 400, "invalid_json"],
    [[one], 400, "invalid_json"],
  ];
  for (const [json, status, code] of cases) {
    const res = await api("POST", "/v1/uploads:batch", { key: writer, json });
    assert.equal(res.status, status, res.text);
    assert.equal(res.data.error.code, code, res.text);
  }
  const anonymous = await api("POST", "/v1/uploads:batch", { json: { uploads: [one] } });
  assert.equal(anonymous.status, 401, anonymous.text);
  const after = await stats(admin);
  assert.deepEqual(after.uploads, before.uploads);
  assert.equal(after.files, before.files);
  // Exactly 100 is a batch.
  const full = await batch(
    writer,
    Array.from({ length: 100 }, (_, i) => item(`e/${i}.bin`, bytes(10))),
  );
  assert.equal(full.status, 200, full.text);
  assert.ok(full.data.results.every((x) => x.status === "upload"));
  assert.equal((await stats(admin)).uploads.pending, before.uploads.pending + 100);
});

test("the same bytes twice in one batch, and a blob another tenant stored, are not a dedup", async () => {
  const { admin, writer } = await tenant("batch-same");
  const other = await tenant("batch-other");
  const theirs = bytes(50);
  assert.equal((await upload(other.writer, { path: "x.bin", data: theirs })).complete.status, 200);
  const twice = bytes(60);
  const res = await batch(writer, [item("s/1.bin", twice), item("s/2.bin", twice), item("s/3.bin", theirs)]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(
    res.data.results.map((x) => x.status),
    ["upload", "upload", "upload"],
  );
  assert.equal((await stats(admin)).uploads.pending, 3);
});

test("many dedups in one batch: each file linked and logged as alone, a replaced file's bytes released", async () => {
  const { admin, writer } = await tenant("batch-dedups");
  const datas = Array.from({ length: 30 }, (_, i) => bytes(100 + i, `dedup-${i}-`));
  for (const [i, data] of datas.entries()) {
    assert.equal((await upload(writer, { path: `d/orig-${i}.bin`, data })).complete.status, 200);
  }
  // A path that points at other bytes, which only it uses: the dedup onto it replaces them.
  const replacedData = bytes(90);
  assert.equal((await upload(writer, { path: "d/replaced.bin", data: replacedData })).complete.status, 200);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), bytes(40)]);
  assert.equal((await upload(writer, { path: "d/png.bin", data: png })).complete.status, 200);
  const before = await stats(admin);
  const logBefore = (await logs(admin)).length;

  const res = await batch(writer, [
    ...datas.map((data, i) => item(`d/copy-${i}.bin`, data)),
    item("d/replaced.bin", datas[0]),
    // The same stored bytes declared as a type they are not: refused alone.
    item("d/png-as-jpeg.bin", png, { content_type: "image/jpeg" }),
    // Declared as what they are: a dedup.
    item("d/png-copy.png", png, { content_type: "image/png" }),
  ]);
  assert.equal(res.status, 200, res.text);
  const r = res.data.results;
  assert.deepEqual(
    r.map((x) => x.status ?? `${x.http_status} ${x.error.code}`),
    [...datas.map(() => "deduplicated"), "deduplicated", "422 content_mismatch", "deduplicated"],
  );
  assert.deepEqual(
    r.slice(0, 30).map((x) => x.ref),
    datas.map((_, i) => `locker://corp/d/copy-${i}.bin`),
  );

  // 31 new files, the path replaced points at the first blob, whose old bytes are gone.
  const after = await stats(admin);
  assert.equal(after.files, before.files + 31);
  assert.equal(after.blobs, before.blobs - 1);
  assert.equal(after.uploads.pending, before.uploads.pending);
  const got = await api("GET", "/v1/files/corp/d/replaced.bin", { key: writer });
  assert.equal(got.data.sha256, sha256hex(datas[0]));
  for (const i of [0, 17, 29]) {
    const copy = await api("GET", `/v1/files/corp/d/copy-${i}.bin`, { key: writer });
    assert.equal(copy.status, 200, copy.text);
    assert.equal(copy.data.sha256, sha256hex(datas[i]));
  }

  // One row per item: 32 dedups and the refusal.
  const rows = (await logs(admin))
    .slice(0, -logBefore || undefined)
    .filter((x) => !["logs", "stats", "stat"].includes(x.operation));
  const ops = rows.map((x) => x.operation).sort();
  assert.deepEqual(ops, [...Array(32).fill("dedup"), "failed"].sort());
  assert.equal(rows.find((x) => x.operation === "failed").path, "d/png-as-jpeg.bin");
});
