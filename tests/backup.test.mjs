// Registry backups, checked from outside the Worker: the test downloads every part, recomputes
// its SHA-256 and reads its rows itself; then wipes the local D1 (`xtask d1-wipe`), restores the
// backup (`xtask restore`, through wrangler) and downloads every file again. xtask runs this
// suite with small pages (LOCKER_BACKUP_PAGE_ROWS=50, 8 pages a run), so a backup spans runs,
// and with LOCKER_BACKUP_STUCK_S=15, so a backup left alone for 15 s counts as stuck.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { BASE } from "./support/env.mjs";
import {
  ADMIN_KEY,
  api,
  assertServes,
  bytes,
  createKey,
  logs,
  reserve,
  sha256hex,
  stats,
  stored,
  tenantName,
  upload,
} from "./support/api.mjs";
import { objectOnDisk, registerS3Bucket } from "./support/s3.mjs";
import { MIB, SyntheticFile, askParts, downloaded, reserveFile, sendPart, uploadInfo } from "./support/multipart.mjs";

const STATE = process.env.LOCKER_STATE;
const XTASK = process.env.LOCKER_XTASK;

/** The newest migration of this checkout: what a backup names as its schema. */
const SCHEMA = readdirSync("migrations")
  .filter((f) => f.endsWith(".sql"))
  .sort()
  .at(-1)
  .replace(/\.sql$/, "");

/** `POST /v1/backups` until the backup is complete; returns its summary and the calls it took. */
async function backupNow() {
  let calls = 0;
  for (;;) {
    const res = await api("POST", "/v1/backups", { key: ADMIN_KEY });
    calls += 1;
    assert.ok([200, 201].includes(res.status), res.text);
    assert.equal(res.status, calls === 1 ? 201 : 200, "the first call starts, the others continue");
    if (res.data.state === "complete") return { backup: res.data, calls };
    assert.ok(calls < 200, "a backup must end");
  }
}

/** Downloads a backup's manifest and parts into a new directory, as an operator would. */
async function download(id) {
  const got = await api("GET", `/v1/backups/${id}`, { key: ADMIN_KEY });
  assert.equal(got.status, 200, got.text);
  const dir = mkdtempSync(join(tmpdir(), `locker-backup-${id}-`));
  const fetchPart = async (part) => {
    const url = part ? `${got.data.url}&part=${encodeURIComponent(part)}` : got.data.url;
    const res = await fetch(url);
    assert.equal(res.status, 200, `${part ?? "manifest"}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const manifestBytes = await fetchPart(null);
  writeFileSync(join(dir, "manifest.json"), manifestBytes);
  const manifest = JSON.parse(manifestBytes.toString("utf8"));
  for (const part of manifest.parts) writeFileSync(join(dir, part.name), await fetchPart(part.name));
  return { dir, manifest, answer: got.data };
}

/** Every row of a downloaded backup, per table, read here (not by the Worker). */
function rowsOf(dir, manifest) {
  const tables = {};
  for (const part of manifest.parts) {
    const gz = readFileSync(join(dir, part.name));
    assert.equal(gz.length, part.bytes, part.name);
    assert.equal(sha256hex(gz), part.sha256, `${part.name}: SHA-256 as in the manifest`);
    const lines = gunzipSync(gz).toString("utf8").split("\n").filter(Boolean);
    assert.equal(lines.length, part.rows, part.name);
    tables[part.table] = [...(tables[part.table] ?? []), ...lines.map((l) => JSON.parse(l))];
  }
  return tables;
}

/** Runs xtask without blocking the event loop (a blocked loop misses the server closing idle
 * keep-alive sockets, and the next fetch fails on a dead one). */
function xtask(...args) {
  return xtaskEnv({}, ...args);
}

/** `xtask` with more environment variables. */
function xtaskEnv(env, ...args) {
  return new Promise((resolve) => {
    const options = { encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, ...env } };
    execFile(XTASK, args, options, (error, stdout, stderr) => {
      resolve({ ok: !error, out: `${stdout}\n${stderr}` });
    });
  });
}

/** Whether the local R2 of the running Worker holds `key` (`wrangler r2 object get`). */
function inLocalR2(key) {
  const wrangler = join("node_modules", "wrangler", "bin", "wrangler.js");
  const file = join(mkdtempSync(join(tmpdir(), "locker-r2-get-")), "object");
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [wrangler, "r2", "object", "get", `locker-blobs/${key}`, "--local", "--persist-to", STATE, "--file", file],
      { env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" } },
      (error, stdout, stderr) => {
        if (!error) return resolve(true);
        const said = `${stdout}\n${stderr}`;
        assert.match(said, /not found|does not exist|NoSuchKey/i, said);
        resolve(false);
      },
    );
  });
}

test("a backup holds every table in checksummed gzip parts, spans runs, and is admin only", async () => {
  const tenant = tenantName("backup");
  const { key, id: keyId } = await createKey(tenant);
  const data = bytes(2000, "backup-");
  const up = await upload(key, { path: "kept/one.bin", data });
  assert.equal(up.complete.status, 200, up.complete.text);
  // Enough access-log rows for more pages than one run writes (50 rows a page, 8 pages a run).
  for (let i = 0; i < 9; i += 1) {
    await Promise.all(Array.from({ length: 50 }, () => api("GET", "/v1/files?namespace=corp", { key })));
  }

  const { backup, calls } = await backupNow();
  assert.ok(calls > 1, `a backup of more pages than one run takes several runs (took ${calls})`);
  assert.equal(backup.schema_version, SCHEMA);
  const { dir, manifest, answer } = await download(backup.id);
  assert.equal(answer.checksums, "ok");
  assert.ok(answer.part_status.every((p) => p.stored === "ok"));
  assert.equal(manifest.id, backup.id);
  assert.equal(manifest.schema_version, SCHEMA);
  assert.ok(manifest.finished_at >= manifest.started_at);
  assert.ok(manifest.parts.length > 8);

  const tables = rowsOf(dir, manifest);
  for (const table of ["routes", "api_keys", "uploads", "files", "buckets", "access_log"]) {
    assert.equal((tables[table] ?? []).length, manifest.rows[table], table);
  }
  const file = tables.files.find((f) => f.tenant === tenant && f.path === "kept/one.bin");
  assert.equal(file?.sha256, sha256hex(data));
  assert.ok(tables.blobs.some((b) => b.tenant === tenant && b.sha256 === sha256hex(data) && b.verified === 1));
  const apiKey = tables.api_keys.find((k) => k.id === keyId);
  assert.ok(apiKey, "the key is in the backup");
  assert.equal(JSON.stringify(apiKey).includes(key.split(".")[1]), false, "never a key's secret");
  assert.ok(tables.access_log.length >= 450);
  assert.ok(tables.access_log.every((r) => r.id <= manifest.access_log_high_water));

  // Listed with its counts; the list, the backup and its URL are the deployment admin's only.
  const list = await api("GET", "/v1/backups", { key: ADMIN_KEY });
  assert.equal(list.status, 200, list.text);
  const listed = list.data.backups.find((b) => b.id === backup.id);
  assert.equal(listed.state, "complete");
  assert.equal(listed.checksums, "verified_on_write");
  assert.deepEqual(listed.rows, manifest.rows);
  assert.equal(listed.bytes, manifest.bytes);
  for (const [method, path] of [
    ["GET", "/v1/backups"],
    ["POST", "/v1/backups"],
    ["GET", `/v1/backups/${backup.id}`],
  ]) {
    const refused = await api(method, path, { key });
    assert.equal(refused.status, 403, `${method} ${path}: ${refused.text}`);
    assert.equal(refused.data.error.code, "forbidden");
  }
  assert.equal((await api("GET", "/v1/backups/20000101T000000000Z", { key: ADMIN_KEY })).status, 404);
  assert.equal((await api("GET", "/v1/backups/..", { key: ADMIN_KEY })).status, 404);
  // The URL is for this backup's listed objects only, and only with its signature.
  const other = answer.url.replace(`/v1/backups/${backup.id}/`, "/v1/backups/20000101T000000000Z/");
  assert.equal((await fetch(other)).status, 403);
  assert.equal((await fetch(`${answer.url}x`)).status, 403);
  assert.equal((await fetch(`${answer.url}&part=..%2Fmanifest.json`)).status, 404);
  assert.equal((await fetch(`${answer.url}&part=00999-files.jsonl.gz`)).status, 404);

  // Logged: the runs with the bytes they wrote, and the reads.
  const rows = await logs(ADMIN_KEY, "&operation=backup");
  assert.ok(rows.filter((r) => r.path === backup.id).length >= calls);
  const reads = await logs(ADMIN_KEY, "&operation=backup_download");
  assert.ok(reads.some((r) => r.path === backup.id && r.success === 1));
});

test("restore: wipe the D1, restore the backup, every file, key and token works again", async () => {
  const tenant = tenantName("restore");
  const { key } = await createKey(tenant);
  const bucket = (await registerS3Bucket()).id;
  const route = await api("PUT", "/v1/routes/direct", { key, json: { bucket_id: bucket } });
  assert.equal(route.status, 200, route.text);
  const files = [
    ["corp", "r2/a.bin", bytes(3000, "r2-a-")],
    ["corp", "r2/empty.bin", Buffer.alloc(0)],
    ["direct", "s3/b.bin", bytes(4000, "s3-b-")],
  ];
  for (const [namespace, path, data] of files) {
    const up = await upload(key, { namespace, path, data });
    assert.equal(up.complete?.status, 200, `${namespace}/${path}: ${up.complete?.text ?? up.reserve.text}`);
  }
  assert.ok(objectOnDisk(`t/${tenant}/sha256/${sha256hex(files[2][2])}`), "the s3 file is on the S3 server");
  // The same bytes under a second path: a dedup, one blob for two files.
  const dedup = await upload(key, { namespace: "corp", path: "r2/again.bin", data: files[0][2] });
  assert.equal(dedup.reserve.data.status, "deduplicated");
  files.push(["corp", "r2/again.bin", files[0][2]]);
  // An upload in parts still running when the backup is taken: two of its three parts stored.
  const big = new SyntheticFile("restore-in-flight", 16 * MIB + 1);
  const reserved = await reserveFile(key, big, { path: "r2/in-flight.bin" });
  assert.equal(reserved.status, 201, reserved.text);
  const plan = reserved.data;
  assert.equal(plan.part_count, 3);
  const early = (await askParts(key, plan, big, [1, 2])).data.parts;
  for (const [i, url] of early.entries()) {
    const sent = await sendPart(url, big.part(i + 1, plan.part_size));
    assert.equal(sent.status, 201, sent.text);
  }
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "corp", path_prefix: "web/" } });
  assert.equal(minted.status, 201, minted.text);
  // A refused request whose path holds control characters: the log keeps it as it came.
  const odd = await reserve(key, { path: "odd\u0000\u0001name\n';", data: bytes(10) });
  assert.equal(odd.status, 400, odd.text);
  const before = stored(await stats(key));

  const { backup } = await backupNow();
  const { dir, manifest: held } = await download(backup.id);
  const heldRows = rowsOf(dir, held);
  const oddRow = heldRows.access_log.find((r) => r.tenant === tenant && (r.path ?? "").includes("\u0001"));
  assert.ok(oddRow, "the backup holds the refused path as it came");
  assert.deepEqual(
    heldRows.upload_parts
      .filter((p) => p.upload_id === plan.upload_id)
      .map((p) => [p.number, p.etag !== null])
      .sort(),
    [
      [1, true],
      [2, true],
    ],
    "the stored parts of the upload still running are in the backup",
  );

  // Wipe: the Worker now has no registry at all.
  const wiped = await xtask("d1-wipe", "--state", STATE);
  assert.ok(wiped.ok, wiped.out);
  assert.notEqual((await api("GET", "/v1/stats", { key })).status, 200, "the wiped registry knows no key");

  // One byte flipped in one part: refused before anything is written.
  const corrupt = mkdtempSync(join(tmpdir(), "locker-corrupt-"));
  cpSync(dir, corrupt, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const victim = manifest.parts.find((p) => p.table === "files");
  const gz = readFileSync(join(corrupt, victim.name));
  gz[Math.floor(gz.length / 2)] ^= 0x01;
  writeFileSync(join(corrupt, victim.name), gz);
  const refused = await xtask("restore", "--from", corrupt, "--state", STATE);
  assert.equal(refused.ok, false, refused.out);
  assert.match(
    refused.out,
    new RegExp(`part ${victim.name} has SHA-256 [0-9a-f]{64}, the manifest says ${victim.sha256}`),
  );
  assert.doesNotMatch(refused.out, /apply the migrations/, "refused before touching the database");
  // A backup of a newer schema than this checkout knows: refused too.
  const newer = mkdtempSync(join(tmpdir(), "locker-newer-"));
  cpSync(dir, newer, { recursive: true });
  writeFileSync(join(newer, "manifest.json"), JSON.stringify({ ...manifest, schema_version: "9999_future" }));
  const tooNew = await xtask("restore", "--from", newer, "--state", STATE);
  assert.equal(tooNew.ok, false, tooNew.out);
  assert.match(tooNew.out, /schema 9999_future, newer than this checkout's migrations/);
  assert.notEqual((await api("GET", "/v1/stats", { key })).status, 200, "still nothing written");

  const restored = await xtask("restore", "--from", dir, "--state", STATE);
  assert.ok(restored.ok, restored.out);
  assert.match(restored.out, /integrity counts all 0/);
  // Into a database that is not empty: refused.
  const again = await xtask("restore", "--from", dir, "--state", STATE);
  assert.equal(again.ok, false, again.out);
  assert.match(again.out, /not empty/);

  // Everything as before: files with the same bytes through both transports, the key, the token.
  for (const [namespace, path, data] of files) await assertServes(key, namespace, path, data);
  assert.deepEqual(stored(await stats(key)), before);
  const oddAgain = (await logs(key)).find((r) => r.id === oddRow.id);
  assert.equal(oddAgain?.path, oddRow.path, "control characters restored byte for byte");
  const viaToken = await upload(minted.data.token, { namespace: "corp", path: "web/new.bin", data: bytes(100, "t-") });
  assert.equal(viaToken.complete?.status, 200, viaToken.complete?.text ?? viaToken.reserve.text);
  // The upload in parts goes on where it was: its last part, then complete.
  const pending = await uploadInfo(key, plan.upload_id);
  assert.equal(pending.status, 200, pending.text);
  assert.equal(pending.data.state, "pending");
  assert.deepEqual(
    pending.data.multipart.parts.map((p) => p.number),
    [1, 2],
  );
  const last = (await askParts(key, plan, big, [3])).data.parts[0];
  assert.equal((await sendPart(last, big.part(3, plan.part_size))).status, 201);
  const finished = await api("POST", `/v1/uploads/${plan.upload_id}/complete`, { key });
  assert.equal(finished.status, 200, finished.text);
  const bigGot = await api("GET", "/v1/files/corp/r2/in-flight.bin", { key });
  assert.equal(bigGot.status, 200, bigGot.text);
  assert.deepEqual(await downloaded(bigGot.data.url), { sha256: big.sha256(), length: big.size });
  const admin = await stats(ADMIN_KEY);
  assert.deepEqual(Object.values(admin.integrity), [0, 0, 0, 0]);
  assert.equal((await api("GET", `${BASE}/v1/files/corp/r2/a.bin`, { key })).status, 200);
});

test("restore --from <backup id>: downloaded through the API with the admin key, refused clearly otherwise", async () => {
  const { key } = await createKey(tenantName("restore-id"));
  const { backup } = await backupNow();
  const got = await api("GET", `/v1/backups/${backup.id}`, { key: ADMIN_KEY });
  assert.equal(got.status, 200, got.text);
  const manifest = got.data.manifest;
  // Restore by id: xtask downloads the backup through the API (the admin key from the variable
  // --key-env names), checks it as a directory and restores it, here into a fresh local D1.
  const elsewhere = mkdtempSync(join(tmpdir(), "locker-restore-by-id-"));
  const byId = await xtask(
    "restore",
    "--from",
    backup.id,
    "--url",
    BASE,
    "--key-env",
    "LOCKER_ADMIN_KEY",
    "--state",
    elsewhere,
  );
  assert.ok(byId.ok, byId.out);
  assert.match(byId.out, new RegExp(`downloaded backup ${backup.id}: the manifest and ${manifest.parts.length} parts`));
  assert.match(byId.out, new RegExp(`restored backup ${backup.id}: .*files ${manifest.rows.files}\\b`));
  assert.match(byId.out, /integrity counts all 0/);
  // Refused clearly: an id the deployment has not, a tenant's key, no key at all, not an id.
  const unknown = await xtask(
    "restore",
    "--from",
    "20000101T000000000Z",
    "--url",
    BASE,
    "--key-env",
    "LOCKER_ADMIN_KEY",
    "--state",
    elsewhere,
  );
  assert.equal(unknown.ok, false, unknown.out);
  assert.match(unknown.out, /has no backup 20000101T000000000Z \(404/);
  const tenantKey = await xtaskEnv(
    { LOCKER_KEY: key },
    "restore",
    "--from",
    backup.id,
    "--url",
    BASE,
    "--state",
    elsewhere,
  );
  assert.equal(tenantKey.ok, false, tenantKey.out);
  assert.match(tenantKey.out, /the key in \$LOCKER_KEY is not .* admin key.*\(403/);
  const noKey = await xtaskEnv({ LOCKER_KEY: "" }, "restore", "--from", backup.id, "--url", BASE, "--state", elsewhere);
  assert.equal(noKey.ok, false, noKey.out);
  assert.match(noKey.out, /admin key in \$LOCKER_KEY/);
  const notAnId = await xtask("restore", "--from", "no-such-dir", "--url", BASE, "--state", elsewhere);
  assert.equal(notAnId.ok, false, notAnId.out);
  assert.match(notAnId.out, /neither a directory nor a backup id/);
  for (const refusal of [unknown, tenantKey, noKey, notAnId]) {
    assert.doesNotMatch(refusal.out, /apply the migrations/, "refused before touching a database");
  }
});

test("retention keeps the newest backup of each day and deletes exactly the older ones", async () => {
  const { backup: first } = await backupNow();
  const { answer } = await download(first.id);
  const { backup: second } = await backupNow();
  const list = (await api("GET", "/v1/backups", { key: ADMIN_KEY })).data.backups.map((b) => b.id);
  assert.ok(list.includes(second.id));
  if (first.id.slice(0, 8) === second.id.slice(0, 8)) {
    // One day: only its newest stays (LOCKER_BACKUP_KEEP_DAILY keeps one per day).
    assert.ok(!list.includes(first.id), `${first.id} is older on the same day`);
    assert.equal((await api("GET", `/v1/backups/${first.id}`, { key: ADMIN_KEY })).status, 404);
    assert.equal((await fetch(answer.url)).status, 404, "its objects are gone with it");
    assert.ok(list.every((id) => id.slice(0, 8) !== second.id.slice(0, 8) || id === second.id));
  }
  const kept = await api("GET", `/v1/backups/${second.id}`, { key: ADMIN_KEY });
  assert.equal(kept.data.checksums, "ok");
});

test("the backup cron starts a backup; the other runs continue it until it is complete", async () => {
  const cron = async (expr) => {
    const res = await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent(expr)}`);
    assert.equal(res.status, 200, await res.text());
  };
  const latest = async () => (await api("GET", "/v1/backups", { key: ADMIN_KEY })).data.backups[0];
  const before = await latest();
  // The sweep's trigger alone starts nothing.
  await cron("*/15 * * * *");
  assert.equal((await latest())?.id, before?.id);
  await cron("17 3 * * *");
  let now = await latest();
  assert.notEqual(now.id, before?.id, "the backup trigger started one");
  for (let i = 0; now.state !== "complete" && i < 100; i += 1) {
    await cron("*/15 * * * *");
    now = await latest();
  }
  assert.equal(now.state, "complete");
  const rows = await logs(ADMIN_KEY, "&operation=backup");
  assert.ok(rows.some((r) => r.path === now.id && r.tenant === null && r.success === 1));
});

test("access-log rows older than the retention leave D1, only once a backup holds them", async () => {
  const { key } = await createKey(tenantName("logage"));
  const list = () => api("GET", "/v1/files?namespace=corp", { key });
  for (let i = 0; i < 3; i += 1) assert.equal((await list()).status, 200);
  const old = (await logs(key)).map((r) => r.id);
  // Older than LOCKER_LOG_RETENTION_S (20 s in the e2e run), but in no backup yet: they stay.
  await sleep(21_000);
  await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);
  const stillThere = (await logs(key)).map((r) => r.id);
  assert.ok(
    old.every((id) => stillThere.includes(id)),
    "no row leaves D1 before a backup holds it",
  );
  const afterSleep = Date.now();
  await list(); // young, and in the backup below: stays
  const young = (await logs(key)).filter((r) => r.ts >= afterSleep).map((r) => r.id);
  assert.ok(young.length >= 1);
  const { backup } = await backupNow();
  await list(); // after the backup: stays
  await fetch(`${BASE}/__scheduled?cron=${encodeURIComponent("*/15 * * * *")}`);

  const left = (await logs(key)).map((r) => r.id);
  assert.deepEqual(
    old.filter((id) => left.includes(id)),
    [],
    "the old rows are gone",
  );
  assert.ok(
    young.filter((id) => !old.includes(id)).every((id) => left.includes(id)),
    "young rows stay",
  );
  const { dir, manifest } = await download(backup.id);
  const held = rowsOf(dir, manifest).access_log.map((r) => r.id);
  assert.ok(
    old.every((id) => held.includes(id)),
    "every row that left D1 is in the backup",
  );
});

test("a backup without progress for LOCKER_BACKUP_STUCK_S is abandoned, its parts deleted, and the next starts afresh", async () => {
  // Enough rows for more pages than one run writes, so the backup is left unfinished.
  const { key } = await createKey(tenantName("stuck"));
  for (let i = 0; i < 20; i += 1) {
    await Promise.all(Array.from({ length: 50 }, () => api("GET", "/v1/files?namespace=corp", { key })));
  }
  const first = await api("POST", "/v1/backups", { key: ADMIN_KEY });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.data.state, "running");
  const stuckId = first.data.id;
  // A run within the timeout continues it (the Worker died, or its runs failed, for less).
  const again = await api("POST", "/v1/backups", { key: ADMIN_KEY });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.data.id, stuckId);
  assert.equal(again.data.state, "running");
  const partial = await api("GET", `/v1/backups/${stuckId}`, { key: ADMIN_KEY });
  const parts = partial.data.manifest.parts.map((p) => p.name);
  assert.ok(parts.length >= 16, "two runs wrote their pages");
  for (const name of [parts[0], parts.at(-1)]) {
    assert.ok(await inLocalR2(`backups/${stuckId}/${name}`), `${name} is stored`);
  }

  // Nothing runs it for longer than the timeout (15 s in the e2e run): the next run gives it up.
  await sleep(16_000);
  const fresh = await api("POST", "/v1/backups", { key: ADMIN_KEY });
  assert.equal(fresh.status, 201, fresh.text);
  assert.notEqual(fresh.data.id, stuckId, "a new backup, not the stuck one");
  const list = (await api("GET", "/v1/backups", { key: ADMIN_KEY })).data.backups.map((b) => b.id);
  assert.ok(!list.includes(stuckId), "the stuck backup is no longer listed");
  assert.equal((await api("GET", `/v1/backups/${stuckId}`, { key: ADMIN_KEY })).status, 404);
  for (const name of [parts[0], parts.at(-1)]) {
    assert.equal(await inLocalR2(`backups/${stuckId}/${name}`), false, `${name} deleted`);
  }
  const failed = await logs(ADMIN_KEY, "&operation=failed");
  assert.ok(
    failed.some((r) => r.path === stuckId && /abandoned: no progress/.test(r.error ?? "")),
    "the abandonment is logged",
  );

  // The new backup completes as any other.
  let now = fresh.data;
  for (let i = 0; now.state !== "complete" && i < 100; i += 1) {
    const res = await api("POST", "/v1/backups", { key: ADMIN_KEY });
    assert.equal(res.status, 200, res.text);
    now = res.data;
  }
  assert.equal(now.id, fresh.data.id);
  assert.equal(now.state, "complete");
});
