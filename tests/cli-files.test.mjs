// The `locker` CLI against the real Worker: put/get/ls/rm round trips with byte equality, a
// directory of 1,000 files, dedup on the second put, refusals with the server's message and a
// non-zero exit, profiles, a revoked key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, api, bytes, createKey, logs, sha256hex, stats, tenantName } from "./support/api.mjs";
import { locker, scratch } from "./support/cli.mjs";
import { BASE } from "./support/env.mjs";

test("put, stat, ls, get, url and rm round-trip the exact bytes", async () => {
  const { key } = await createKey(tenantName("cli-rt"));
  const dir = scratch("rt");
  const data = bytes(300_000, "%PDF-1.7\n");
  writeFileSync(join(dir, "deck.pdf"), data);

  const put = await locker(["put", join(dir, "deck.pdf"), "locker://corp/q3/", "--json"], { key });
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(
    { stored: put.json.stored, dedup: put.json.deduplicated, failed: put.json.failed },
    { stored: 1, dedup: 0, failed: 0 },
  );
  const [file] = put.json.files;
  assert.equal(file.ref, "locker://corp/q3/deck.pdf");
  assert.equal(file.sha256, sha256hex(data));
  assert.equal(file.bytes_sent, data.length);

  const st = await locker(["stat", "locker://corp/q3/deck.pdf", "--json"], { key });
  assert.equal(st.code, 0, st.stderr);
  assert.equal(st.json.size, data.length);
  assert.equal(st.json.content_type, "application/pdf", "guessed from the name");

  const ls = await locker(["ls", "locker://corp/q3/"], { key });
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal(ls.stdout, "locker://corp/q3/deck.pdf\n");
  const long = await locker(["ls", "-l", "locker://corp/"], { key });
  assert.match(
    long.stdout,
    new RegExp(
      `^ +${data.length}  \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z  ${sha256hex(data).slice(0, 12)}  locker://corp/q3/deck.pdf\\n$`,
    ),
  );

  const got = await locker(["get", "locker://corp/q3/deck.pdf", join(dir, "back.pdf")], { key });
  assert.equal(got.code, 0, got.stderr);
  assert.ok(readFileSync(join(dir, "back.pdf")).equals(data));
  const toDir = await locker(["get", "locker://corp/q3/deck.pdf", join(dir, "sub")], {
    key,
    env: {},
    cwd: dir,
  });
  // DEST that does not exist is a file name, not a directory.
  assert.equal(toDir.code, 0, toDir.stderr);
  assert.ok(readFileSync(join(dir, "sub")).equals(data));
  const stdout = await locker(["get", "locker://corp/q3/deck.pdf", "-"], { key });
  assert.equal(stdout.code, 0);
  assert.equal(stdout.stdout.length > 0, true);

  const url = await locker(["url", "locker://corp/q3/deck.pdf", "--expires", "10m", "--json"], { key });
  assert.equal(url.code, 0, url.stderr);
  assert.equal(url.json.expires_in, 600);
  const fetched = Buffer.from(await (await fetch(url.json.url)).arrayBuffer());
  assert.ok(fetched.equals(data));

  const rm = await locker(["rm", "locker://corp/q3/deck.pdf"], { key });
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, "deleted locker://corp/q3/deck.pdf\n");
  const gone = await locker(["stat", "locker://corp/q3/deck.pdf"], { key });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /not_found, HTTP 404/);
  const empty = await locker(["ls", "locker://corp/"], { key });
  assert.equal(empty.stdout, "");
});

// Two tests sharing one tenant and directory, so each has its own time budget (the Worker
// under wrangler dev takes a while for 1,000 files on a loaded machine).
const bulk = { key: undefined, dir: undefined, files: new Map() };

test("a directory of 1,000 small files, put with -j 16, listed with their digests", async () => {
  ({ key: bulk.key } = await createKey(tenantName("cli-dir")));
  bulk.dir = scratch("dir");
  for (let i = 0; i < 1000; i++) {
    const rel = `d${i % 10}/f${String(i).padStart(4, "0")}.bin`;
    mkdirSync(join(bulk.dir, `d${i % 10}`), { recursive: true });
    const data = bytes(100 + (i % 50) * 20, `file ${i} `);
    writeFileSync(join(bulk.dir, rel), data);
    bulk.files.set(rel, data);
  }
  const first = await locker(["put", "-j", "16", bulk.dir, "locker://bulk/run/", "--json"], { key: bulk.key });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.json.stored, 1000);
  assert.equal(first.json.failed, 0);
  const total = [...bulk.files.values()].reduce((n, d) => n + d.length, 0);
  assert.equal(first.json.bytes_sent, total);
  // Reserved in batches (POST /v1/uploads:batch): every row of one batch carries that
  // request's time, where 1,000 single reserves would carry about 1,000 different ones.
  const reserves = await logs(bulk.key, "&operation=reserve");
  assert.equal(reserves.length, 1000);
  const requests = new Set(reserves.map((row) => row.ts)).size;
  assert.ok(requests <= 50, `${requests} reserve requests for 1,000 files`);
  // Completed in batches too (POST /v1/uploads:complete; its rows carry the request's time),
  // gathered while one is in flight and held back up to 250 ms for 32 while transfers go on:
  // 33 on 2 shared cores under wrangler dev; gathering only while one is in flight made 67,
  // single completes logged 280 to 332 distinct times.
  const completes = await logs(bulk.key, "&operation=complete");
  assert.equal(completes.length, 1000);
  const completeRequests = new Set(completes.map((row) => row.ts)).size;
  console.log(`1,000 files: ${requests} reserve and ${completeRequests} complete requests`);
  assert.ok(completeRequests <= 55, `${completeRequests} complete requests for 1,000 files`);
  // A batch's time counts for each of its files, so every stored file has a complete time.
  assert.ok(first.json.files.every((f) => Number.isInteger(f.ms.complete) && f.ms.complete >= 0));

  const listed = await locker(["ls", "locker://bulk/run/", "--json"], { key: bulk.key });
  assert.equal(listed.json.files.length, 1000);
  for (const f of listed.json.files) {
    const rel = f.path.slice("run/".length);
    assert.equal(f.sha256, sha256hex(bulk.files.get(rel)), rel);
  }
});

test("the same directory again: all 1,000 deduplicated, 0 body bytes", async () => {
  const { key, dir, files } = bulk;
  assert.ok(key, "the previous test made the tenant");
  const before = await stats(key);
  const again = await locker(["put", "-j", "16", dir, "locker://bulk/run/", "--json"], { key });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    { stored: again.json.stored, dedup: again.json.deduplicated, sent: again.json.bytes_sent },
    { stored: 0, dedup: 1000, sent: 0 },
  );
  // The server's own books agree: no upload was reserved, no byte was written.
  const after = await stats(key);
  assert.deepEqual(after.uploads, before.uploads);
  assert.equal(after.blobs, before.blobs);
  const dedups = await logs(key, "&operation=dedup");
  assert.equal(dedups.length, 1000);
  assert.ok(dedups.every((row) => row.bytes === 0));
  const requests = new Set(dedups.map((row) => row.ts)).size;
  assert.ok(requests <= 50, `${requests} reserve requests for 1,000 dedups`);

  const one = await locker(["get", "locker://bulk/run/d7/f0777.bin", join(dir, "777")], { key });
  assert.equal(one.code, 0, one.stderr);
  assert.ok(readFileSync(join(dir, "777")).equals(files.get("d7/f0777.bin")));
});

// The PNG signature as bytes (a JS string would be encoded as UTF-8, turning 0x89 into two bytes).
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test("refusals show the server's code and message, exit 1, and store nothing", async () => {
  const { key } = await createKey(tenantName("cli-refuse"), { max_size: 1000, types: ["image/*"] });
  const dir = scratch("refuse");
  writeFileSync(join(dir, "big.png"), bytes(5000, PNG));
  writeFileSync(join(dir, "notes.txt"), bytes(10));

  const big = await locker(["put", join(dir, "big.png"), "locker://corp/"], { key });
  assert.equal(big.code, 1);
  assert.match(big.stderr, /file is 5000 bytes; the limit here is 1000 bytes/);
  assert.match(big.stderr, /too_large/);

  const typed = await locker(["put", join(dir, "notes.txt"), "locker://corp/", "--json"], { key });
  assert.equal(typed.code, 1);
  assert.equal(typed.json.failed, 1);
  assert.equal(typed.json.files[0].error.code, "type_not_allowed");

  // Two files, one refused: the other is stored, and the exit says partial failure.
  writeFileSync(join(dir, "ok.png"), bytes(100, PNG));
  const mixed = await locker(["put", join(dir, "ok.png"), join(dir, "big.png"), "locker://corp/m/", "--json"], {
    key,
  });
  assert.equal(mixed.code, 1);
  assert.deepEqual([mixed.json.stored, mixed.json.failed], [1, 1]);

  const ls = await locker(["ls", "locker://corp/", "--json"], { key });
  assert.deepEqual(
    ls.json.files.map((f) => f.ref),
    ["locker://corp/m/ok.png"],
  );

  // Bad arguments are usage errors (2), refused before anything is sent.
  for (const args of [
    ["put", join(dir, "ok.png"), "locker://corp/../x/"],
    ["put", join(dir, "missing.png"), "locker://corp/"],
    ["put", dir, "locker://corp/one-file"],
    ["get", "locker://corp/"],
    ["rm", "locker://corp/m/ok.png", "corp/x"],
    ["frobnicate"],
  ]) {
    const r = await locker(args, { key });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
  }
  const still = await locker(["ls", "locker://corp/"], { key });
  assert.equal(still.stdout, "locker://corp/m/ok.png\n", "rm with a bad ref deleted nothing");
});

test("a file refused at its batched complete fails alone: the others are stored, exit 1", async () => {
  const { key } = await createKey(tenantName("cli-batch-refuse"));
  const dir = scratch("batch-refuse");
  const files = new Map();
  for (let i = 0; i < 40; i++) {
    const data = bytes(200 + i, `text ${i} `);
    writeFileSync(join(dir, `t${String(i).padStart(2, "0")}.txt`), data);
    files.set(`t${String(i).padStart(2, "0")}.txt`, data);
  }
  // Declared image/png (from the name), bytes are HTML: the Worker accepts the reservation and
  // the bytes, and refuses at complete, from the stored bytes' magic number (422).
  writeFileSync(join(dir, "fake.png"), Buffer.from("<html><script>alert(1)</script></html>"));

  const put = await locker(["put", "-j", "8", dir, "locker://corp/b/", "--json"], { key });
  assert.equal(put.code, 1, put.stderr);
  assert.deepEqual([put.json.stored, put.json.failed], [40, 1]);
  const failed = put.json.files.filter((f) => f.error);
  assert.deepEqual(
    failed.map((f) => [f.ref, f.error.code]),
    [["locker://corp/b/fake.png", "content_mismatch"]],
  );
  assert.match(put.stderr, /failed .*fake\.png: .*content_mismatch, HTTP 422/);
  // Its completes went in batches (single completes, 8 at a time, logged 18 distinct
  // times: rows of one batch share its request's time).
  const completes = await logs(key, "&operation=complete");
  assert.ok(completes.length >= 40, `${completes.length} completes logged`);
  const requests = new Set(completes.map((row) => row.ts)).size;
  assert.ok(requests <= 10, `${requests} complete requests for 41 files`);

  const ls = await locker(["ls", "locker://corp/b/", "--json"], { key });
  assert.deepEqual(ls.json.files.map((f) => f.path).sort(), [...files.keys()].map((n) => `b/${n}`).sort());
  for (const name of ["t00.txt", "t39.txt"]) {
    const got = await locker(["get", `locker://corp/b/${name}`, join(dir, `back-${name}`)], { key });
    assert.equal(got.code, 0, got.stderr);
    assert.ok(readFileSync(join(dir, `back-${name}`)).equals(files.get(name)), name);
  }
  const gone = await locker(["stat", "locker://corp/b/fake.png"], { key });
  assert.equal(gone.code, 1, "nothing committed for the refused file");
});

test("profiles: saved with mode 0600, key never printed; a bad profile is a usage error", async () => {
  const { key } = await createKey(tenantName("cli-prof"));
  const dir = scratch("prof");
  const config = join(dir, "conf", "config.toml");
  const env = { LOCKER_CONFIG: config, LOCKER_URL: undefined };

  const set = await locker(["profile", "set", "local", "--url", BASE], { env, input: `${key}\n` });
  assert.equal(set.code, 0, set.stderr);
  assert.equal(statSync(config).mode & 0o777, 0o600);
  assert.ok(readFileSync(config, "utf8").includes(key));

  const ls = await locker(["profile", "ls"], { env });
  assert.equal(ls.stdout, `local (default)  ${BASE}\n`);
  assert.ok(!ls.stdout.includes(key) && !ls.stderr.includes(key));

  writeFileSync(join(dir, "a.bin"), bytes(50));
  const byDefault = await locker(["put", join(dir, "a.bin"), "locker://p/"], { env });
  assert.equal(byDefault.code, 0, byDefault.stderr);
  const named = await locker(["ls", "locker://p/", "--profile", "local"], { env });
  assert.equal(named.stdout, "locker://p/a.bin\n");

  const missing = await locker(["ls", "locker://p/", "--profile", "prod"], { env });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no profile "prod".*profiles: local/);

  const wrongKey = await locker(["ls", "locker://p/"], { env: { ...env, LOCKER_URL: BASE }, key: "lk_nope.bad" });
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /HTTP 401/);

  const noServer = await locker(["ls", "locker://p/"], {
    env: { LOCKER_CONFIG: join(dir, "none.toml"), LOCKER_URL: undefined },
  });
  assert.equal(noServer.code, 2);
  assert.match(noServer.stderr, /no server configured/);

  chmodSync(config, 0o644);
  const readable = await locker(["ls", "locker://p/"], { env });
  assert.equal(readable.code, 2);
  assert.match(readable.stderr, /others may read it/);
});

test("keys made and revoked through the CLI; a revoked key is refused", async () => {
  const tenant = tenantName("cli-keys");
  const made = await locker(["keys", "create", "--tenant", tenant, "--ns", "*", "--ops", "read,write", "--json"], {
    key: ADMIN_KEY,
  });
  assert.equal(made.code, 0, made.stderr);
  const { key, id } = made.json;
  const dir = scratch("keys");
  writeFileSync(join(dir, "a.bin"), bytes(64));
  const ok = await locker(["put", join(dir, "a.bin"), "locker://k/"], { key });
  assert.equal(ok.code, 0, ok.stderr);

  const revoked = await locker(["keys", "revoke", id], { key: ADMIN_KEY });
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout, `revoked ${id}\n`);
  const refused = await locker(["ls", "locker://k/"], { key });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /revoked|HTTP 401/);
  const direct = await api("GET", "/v1/files?namespace=k", { key });
  assert.equal(direct.status, 401);

  // Creating a key wider than the creator's is the server's refusal, shown as such.
  const { key: narrow } = await createKey(tenantName("cli-narrow"), { namespaces: ["a"], ops: ["admin", "read"] });
  const wider = await locker(["keys", "create", "--ns", "b", "--ops", "read"], { key: narrow });
  assert.equal(wider.code, 1);
  assert.match(wider.stderr, /scope_exceeded, HTTP 403/);
});
