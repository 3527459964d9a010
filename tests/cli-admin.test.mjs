// The `locker` CLI's admin side against the real Worker and an independent S3 server
// (s3s-fs): buckets, routes, uploads straight to storage (the s3 transport), upload tokens,
// the access log, stats and doctor, and the key listing.
import { spawn } from "node:child_process";
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, bytes, createKey, sha256hex, tenantName } from "./support/api.mjs";
import { CLI, locker, scratch } from "./support/cli.mjs";
import { BASE } from "./support/env.mjs";

const S3_URL = process.env.LOCKER_S3_URL;
const S3_ROOT = process.env.LOCKER_S3_ROOT;
const BUCKET = process.env.LOCKER_S3_CLI_BUCKET;

let bucket;

before(async () => {
  const added = await locker(
    ["buckets", "add", BUCKET, "--provider", "s3", "--endpoint", S3_URL, "--region", "us-east-1", "--json"],
    { key: ADMIN_KEY },
  );
  assert.equal(added.code, 0, added.stderr);
  bucket = added.json;
});

/** A tenant whose namespace `direct` goes to the s3 bucket, routed through the CLI. */
async function routedTenant(label) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const set = await locker(["routes", "set", "direct", bucket.id], { key });
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, `direct -> ${bucket.id}\n`);
  return { tenant, key };
}

test("buckets add and ls; a second registration is the server's 409", async () => {
  assert.equal(bucket.transport, "s3");
  assert.equal(bucket.id, sha256hex(Buffer.from(`s3:${S3_URL}:${BUCKET}`)));
  const ls = await locker(["buckets", "ls", "--json"], { key: ADMIN_KEY });
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok(ls.json.buckets.some((b) => b.id === bucket.id && b.endpoint === S3_URL));
  const plain = await locker(["buckets", "ls"], { key: ADMIN_KEY });
  // The verification policy between the transport and the name: the default, read_back.
  assert.match(plain.stdout, new RegExp(`${bucket.id}  active +s3 s3 +read_back +${BUCKET} \\(${S3_URL}\\)`));
  const again = await locker(["buckets", "add", BUCKET, "--provider", "s3", "--endpoint", S3_URL], {
    key: ADMIN_KEY,
  });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already registered.*HTTP 409/);
});

test("put and get straight to storage (s3 transport), dedup on the second put", async () => {
  const { tenant, key } = await routedTenant("cli-s3");
  const routes = await locker(["routes", "ls", "--json"], { key });
  assert.deepEqual(
    routes.json.routes.map((r) => [r.namespace, r.bucket_id]),
    [["direct", bucket.id]],
  );
  const dir = scratch("s3");
  const data = bytes(2 * 1024 * 1024 + 7);
  writeFileSync(join(dir, "big.bin"), data);
  const put = await locker(["put", join(dir, "big.bin"), "locker://direct/x/", "--json"], { key });
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.json.files[0].bytes_sent, data.length);
  // The bytes are in s3s-fs, at the key only the Worker chooses.
  const object = join(S3_ROOT, BUCKET, "t", tenant, "sha256", sha256hex(data));
  assert.ok(existsSync(object), object);
  assert.ok(readFileSync(object).equals(data));

  const stat = await locker(["stat", "locker://direct/x/big.bin", "--json"], { key });
  assert.equal(stat.json.bucket_id, bucket.id);
  const got = await locker(["get", "locker://direct/x/big.bin", join(dir, "back.bin")], { key });
  assert.equal(got.code, 0, got.stderr);
  assert.ok(readFileSync(join(dir, "back.bin")).equals(data));

  const again = await locker(["put", join(dir, "big.bin"), "locker://direct/y/copy.bin", "--json"], { key });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual([again.json.deduplicated, again.json.bytes_sent], [1, 0]);

  // An inactive bucket takes no new uploads (the refusal is the server's); active again, it does.
  const off = await locker(["buckets", "deactivate", bucket.id], { key: ADMIN_KEY });
  assert.equal(off.code, 0, off.stderr);
  writeFileSync(join(dir, "new.bin"), bytes(1000));
  const refused = await locker(["put", join(dir, "new.bin"), "locker://direct/x/"], { key });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /HTTP \d{3}/);
  const on = await locker(["buckets", "activate", bucket.id], { key: ADMIN_KEY });
  assert.equal(on.code, 0, on.stderr);
  const stored = await locker(["put", join(dir, "new.bin"), "locker://direct/x/"], { key });
  assert.equal(stored.code, 0, stored.stderr);
});

test("an upload token minted by the CLI writes below its prefix only", async () => {
  const { key } = await routedTenant("cli-token");
  const minted = await locker(["token", "--ns", "direct", "--prefix", "u/7/", "--ttl", "10m", "--json"], { key });
  assert.equal(minted.code, 0, minted.stderr);
  assert.match(minted.json.token, /^lkt_/);
  assert.equal(minted.json.path_prefix, "u/7/");
  const dir = scratch("token");
  writeFileSync(join(dir, "a.bin"), bytes(500));
  const inside = await locker(["put", join(dir, "a.bin"), "locker://direct/u/7/"], { key: minted.json.token });
  assert.equal(inside.code, 0, inside.stderr);
  const outside = await locker(["put", join(dir, "a.bin"), "locker://direct/u/8/"], { key: minted.json.token });
  assert.equal(outside.code, 1);
  assert.match(outside.stderr, /HTTP 403/);
});

test("logs, stats and doctor", async () => {
  const { key } = await routedTenant("cli-logs");
  const dir = scratch("logs");
  writeFileSync(join(dir, "a.txt"), bytes(300));
  await locker(["put", join(dir, "a.txt"), "locker://corp/"], { key });
  await locker(["put", join(dir, "a.txt"), "locker://corp/b.txt"], { key });

  const dedup = await locker(["logs", "--op", "dedup", "--since", "10m", "--json"], { key });
  assert.equal(dedup.code, 0, dedup.stderr);
  assert.deepEqual(
    dedup.json.entries.map((e) => [e.operation, e.path, e.bytes]),
    [["dedup", "b.txt", 0]],
  );
  const plain = await locker(["logs", "--limit", "3"], { key });
  assert.equal(plain.stdout.trim().split("\n").length, 3);
  assert.match(plain.stdout, /Z {2}dedup +ok +corp\/b\.txt {2}0 bytes/);

  const s = await locker(["stats", "--json"], { key });
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.json.files, 2);
  assert.equal(s.json.blobs, 1);

  const doctor = await locker(["doctor", "--json"], { key: ADMIN_KEY });
  assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
  const byName = Object.fromEntries(doctor.json.checks.map((c) => [c.name, c.status]));
  assert.equal(byName.health, "ok");
  assert.equal(byName.integrity, "ok");
  assert.notEqual(byName["clock skew"], "fail");
  assert.equal(byName[`cors ${BUCKET}`], "skipped");
  // s3s-fs answers no CORS preflight: a page could not upload to it, and doctor says so.
  const cors = await locker(["doctor", "--origin", "https://app.example", "--json"], { key: ADMIN_KEY });
  assert.equal(cors.code, 1);
  const check = cors.json.checks.find((c) => c.name === `cors ${BUCKET}`);
  assert.equal(check.status, "fail", JSON.stringify(check));
  // A tenant key without rights to list buckets is told so, not failed.
  const tenantDoctor = await locker(["doctor", "--json"], { key });
  assert.equal(tenantDoctor.code, 0, tenantDoctor.stdout);
});

test("logs --follow prints new rows as they come, one JSON line each", async () => {
  const { key } = await routedTenant("cli-follow");
  const dir = scratch("follow");
  writeFileSync(join(dir, "a.bin"), bytes(200));
  const child = spawn(CLI, ["logs", "--follow", "--op", "complete", "--json"], {
    env: { ...process.env, LOCKER_URL: BASE, LOCKER_KEY: key, LOCKER_CONFIG: join(dir, "none.toml") },
  });
  let seen = "";
  const line = new Promise((resolve) => {
    child.stdout.on("data", (d) => {
      seen += d;
      if (seen.includes("\n")) resolve(seen);
    });
  });
  try {
    // Started with no rows: the upload's row must come from a poll, not the first page.
    await new Promise((r) => setTimeout(r, 1000));
    const put = await locker(["put", join(dir, "a.bin"), "locker://corp/f/"], { key });
    assert.equal(put.code, 0, put.stderr);
    const first = await Promise.race([
      line,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no row: ${seen}`)), 15000)),
    ]);
    const row = JSON.parse(first.split("\n")[0]);
    assert.deepEqual([row.operation, row.path, row.bytes], ["complete", "f/a.bin", 200]);
  } finally {
    const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
    child.kill("SIGINT");
    const how = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 10000))]);
    if (how === "still running") child.kill("SIGKILL");
    assert.equal(how, 0, "Ctrl-C ends --follow cleanly");
  }
});

test("keys ls: the keys this admin may see, as lines or one JSON document; never a secret", async () => {
  const tenant = tenantName("cli-keys-ls");
  const root = await createKey(tenant);
  const made = await locker(
    ["keys", "create", "--ns", "corp", "--ops", "read,write", "--max-size", "5000", "--label", "ci", "--json"],
    { key: root.key },
  );
  assert.equal(made.code, 0, made.stderr);
  const ci = made.json;
  const revoked = await locker(["keys", "revoke", ci.id], { key: root.key });
  assert.equal(revoked.code, 0, revoked.stderr);

  const listed = await locker(["keys", "ls", "--json"], { key: root.key });
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.json.cursor, null, "every page, followed by the CLI");
  assert.deepEqual(
    listed.json.keys.map((k) => k.id),
    [root.id, ci.id].sort(),
  );
  const shown = listed.json.keys.find((k) => k.id === ci.id);
  assert.deepEqual(shown.scopes, { namespaces: ["corp"], ops: ["read", "write"], max_size: 5000 });
  assert.equal(shown.label, "ci");
  assert.equal(shown.revoked, true);
  assert.equal(shown.tenant, tenant);

  const plain = await locker(["keys", "ls"], { key: root.key });
  assert.equal(plain.code, 0, plain.stderr);
  const lines = plain.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 2, plain.stdout);
  const ciLine = lines.find((l) => l.startsWith(ci.id));
  assert.match(ciLine, new RegExp(`^${ci.id}  revoked  ${tenant}  ns=corp  ops=read,write  max_size=5000  created `));
  assert.match(ciLine, /label="ci"$/);
  assert.match(
    lines.find((l) => l.startsWith(root.id)),
    new RegExp(`^${root.id}  active   ${tenant}  ns=\\*  ops=read,write,delete,admin  created \\S+$`),
  );
  for (const out of [listed.stdout, plain.stdout, listed.stderr, plain.stderr]) {
    for (const secret of [root.key, ci.key, root.key.split(".")[1], ci.key.split(".")[1]]) {
      assert.ok(!out.includes(secret), "a secret was printed");
    }
  }

  // A key without the admin op is the server's refusal, exit 1 with its code.
  const reader = await createKey(tenantName("cli-keys-ls-r"), { ops: ["read"] });
  const refused = await locker(["keys", "ls"], { key: reader.key });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /HTTP 403/);
});
