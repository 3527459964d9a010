// The upload flow over plain HTTP against the real Worker, local R2 and D1: reserve, PUT to the
// signed data-plane URL, complete, download; dedup; overwrite; delete; concurrency.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { api, bytes, createKey, logs, reserve, sha256hex, stats, tenantName, upload } from "./support/api.mjs";

let key;
before(async () => {
  key = (await createKey(tenantName("up"))).key;
});

test("upload then download gives back the same bytes, with safe headers and ranges", async () => {
  const data = bytes(200_000, "%PDF-1.7\n");
  const {
    reserve: reserved,
    put,
    complete,
  } = await upload(key, {
    path: "docs/report.pdf",
    data,
    contentType: "application/pdf",
  });
  assert.equal(reserved.status, 201, reserved.text);
  assert.equal(reserved.data.status, "upload");
  assert.equal(reserved.data.method, "PUT");
  assert.equal(reserved.data.ref, "locker://corp/docs/report.pdf");
  assert.equal(put.status, 201, put.text);
  assert.equal(complete.status, 200, complete.text);
  assert.deepEqual(complete.data, {
    status: "complete",
    deduplicated: false,
    ref: "locker://corp/docs/report.pdf",
    sha256: sha256hex(data),
    size: data.length,
  });

  const meta = await api("GET", "/v1/files/corp/docs/report.pdf", { key });
  assert.equal(meta.status, 200, meta.text);
  assert.equal(meta.data.sha256, sha256hex(data));
  assert.equal(meta.data.size, data.length);
  assert.equal(meta.data.content_type, "application/pdf");
  assert.match(meta.data.url, /\/v1\/download\?sig=/);

  const full = await fetch(meta.data.url);
  assert.equal(full.status, 200);
  const got = Buffer.from(await full.arrayBuffer());
  assert.equal(sha256hex(got), sha256hex(data));
  assert.equal(full.headers.get("content-type"), "application/pdf");
  assert.equal(full.headers.get("x-content-type-options"), "nosniff");
  assert.match(full.headers.get("content-security-policy"), /sandbox/);
  assert.match(full.headers.get("content-disposition"), /^inline; filename="report.pdf"/);

  const part = await fetch(meta.data.url, { headers: { range: "bytes=100-199" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 100-199/${data.length}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(100, 200));
  const tail = await fetch(meta.data.url, { headers: { range: "bytes=-10" } });
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), data.subarray(data.length - 10));
  const beyond = await fetch(meta.data.url, { headers: { range: `bytes=${data.length}-` } });
  assert.equal(beyond.status, 416);
});

test("script-capable types are served as attachments", async () => {
  const data = Buffer.from("<html><script>alert(1)</script></html>");
  const { complete } = await upload(key, { path: "page.html", data, contentType: "text/html" });
  assert.equal(complete.status, 200, complete.text);
  const meta = await api("GET", "/v1/files/corp/page.html", { key });
  const res = await fetch(meta.data.url);
  assert.match(res.headers.get("content-disposition"), /^attachment; filename="page.html"/);
  assert.equal(res.headers.get("content-type"), "text/html");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
});

test("the same bytes again are deduplicated: no URL, no body sent, and the log says dedup", async () => {
  const data = bytes(50_000);
  const first = await upload(key, { path: "a/original.bin", data });
  assert.equal(first.complete.status, 200, first.complete.text);
  const before = await stats(key);

  const again = await reserve(key, {
    namespace: "corp",
    path: "b/copy.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.data.status, "deduplicated");
  assert.equal(again.data.deduplicated, true);
  assert.equal(again.data.ref, "locker://corp/b/copy.bin");
  assert.equal(again.data.url, undefined);

  const after = await stats(key);
  assert.equal(after.files, before.files + 1);
  assert.equal(after.blobs, before.blobs);
  assert.equal(after.objects, before.objects);
  const copy = await api("GET", "/v1/files/corp/b/copy.bin", { key });
  assert.equal(copy.data.sha256, sha256hex(data));
  const [row] = (await logs(key, "&operation=dedup")).filter((r) => r.path === "b/copy.bin");
  assert.equal(row.success, 1);
  assert.equal(row.bytes, 0);
});

test("complete is idempotent", async () => {
  const data = bytes(1000);
  const { reserve: reserved, complete } = await upload(key, { path: "idem.bin", data });
  const second = await api("POST", `/v1/uploads/${reserved.data.upload_id}/complete`, { key });
  assert.equal(second.status, 200);
  assert.deepEqual(second.data, complete.data);
});

test("delete keeps bytes another file uses; deleting the last user removes them", async () => {
  const data = bytes(4096);
  await upload(key, { path: "shared/one.bin", data });
  const dedup = await reserve(key, {
    namespace: "corp",
    path: "shared/two.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  assert.equal(dedup.data.status, "deduplicated");
  const before = await stats(key);

  const del1 = await api("DELETE", "/v1/files/corp/shared/one.bin", { key });
  assert.equal(del1.status, 200, del1.text);
  assert.equal(del1.data.bytes_deleted, false);
  const mid = await stats(key);
  assert.equal(mid.objects, before.objects);
  assert.equal(mid.blobs, before.blobs);
  const two = await api("GET", "/v1/files/corp/shared/two.bin", { key });
  const body = Buffer.from(await (await fetch(two.data.url)).arrayBuffer());
  assert.equal(sha256hex(body), sha256hex(data));

  const del2 = await api("DELETE", "/v1/files/corp/shared/two.bin", { key });
  assert.equal(del2.data.bytes_deleted, true);
  const after = await stats(key);
  assert.equal(after.objects, before.objects - 1);
  assert.equal(after.blobs, before.blobs - 1);
  assert.equal((await api("GET", "/v1/files/corp/shared/two.bin", { key })).status, 404);
  // A download URL minted while the file existed no longer serves it.
  assert.equal((await fetch(two.data.url)).status, 404);
});

test("overwriting a path releases the old bytes", async () => {
  const v1 = bytes(3000);
  const v2 = bytes(3000);
  await upload(key, { path: "over/write.bin", data: v1 });
  const before = await stats(key);
  const { complete } = await upload(key, { path: "over/write.bin", data: v2 });
  assert.equal(complete.status, 200, complete.text);
  const after = await stats(key);
  assert.equal(after.files, before.files);
  assert.equal(after.objects, before.objects);
  assert.equal(after.blobs, before.blobs);
  const meta = await api("GET", "/v1/files/corp/over/write.bin", { key });
  assert.equal(meta.data.sha256, sha256hex(v2));
});

test("list pages through a namespace by prefix", async () => {
  for (const name of ["l/1.txt", "l/2.txt", "l/3.txt", "m/4.txt"]) {
    const r = await upload(key, { namespace: "lists", path: name, data: bytes(10), contentType: "text/plain" });
    assert.equal(r.complete.status, 200, r.complete.text);
  }
  const page1 = await api("GET", "/v1/files?namespace=lists&prefix=l/&limit=2", { key });
  assert.equal(page1.status, 200, page1.text);
  assert.deepEqual(
    page1.data.files.map((f) => f.path),
    ["l/1.txt", "l/2.txt"],
  );
  assert.equal(page1.data.files[0].ref, "locker://lists/l/1.txt");
  const page2 = await api(
    "GET",
    `/v1/files?namespace=lists&prefix=l/&limit=2&cursor=${encodeURIComponent(page1.data.cursor)}`,
    { key },
  );
  assert.deepEqual(
    page2.data.files.map((f) => f.path),
    ["l/3.txt"],
  );
  assert.equal(page2.data.cursor, null);
});

test("aborting a reservation closes its URL and stores nothing", async () => {
  const data = bytes(2048);
  const before = await stats(key);
  const reserved = await reserve(key, {
    namespace: "corp",
    path: "aborted.bin",
    sha256: sha256hex(data),
    size: data.length,
    content_type: "application/octet-stream",
  });
  const abort = await api("DELETE", `/v1/uploads/${reserved.data.upload_id}`, { key });
  assert.equal(abort.status, 200, abort.text);
  const put = await api("PUT", reserved.data.url, { body: data, headers: reserved.data.headers });
  assert.equal(put.status, 409);
  assert.equal(put.data.error.code, "upload_closed");
  const after = await stats(key);
  assert.equal(after.files, before.files);
  assert.equal(after.objects, before.objects);
  assert.equal(after.uploads.aborted, before.uploads.aborted + 1);
});

test("20 concurrent uploads of the same bytes end with one object and 20 files", async () => {
  const data = bytes(100_000);
  const before = await stats(key);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => upload(key, { namespace: "race", path: `copy-${i}.bin`, data })),
  );
  for (const r of results) {
    // Each client either uploaded, found the bytes already there, or was deduplicated.
    if (r.complete) {
      assert.ok([200, 201].includes(r.put.status), r.put.text);
      assert.equal(r.complete.status, 200, r.complete.text);
    } else {
      assert.equal(r.reserve.status, 200, r.reserve.text);
      assert.equal(r.reserve.data.status, "deduplicated");
    }
  }
  const after = await stats(key);
  assert.equal(after.files, before.files + 20);
  assert.equal(after.objects, before.objects + 1);
  assert.equal(after.blobs, before.blobs + 1);
  assert.deepEqual(after.integrity, {
    blobs_without_bucket: 0,
    files_without_bucket: 0,
    files_without_verified_blob: 0,
    routes_without_bucket: 0,
  });
});
