// `cargo xtask bench` (or `bench cli`): the `locker` CLI against curl and rclone, to the same
// S3 server (s3s-fs) through the s3 transport. Writes its section of BENCHMARKS.md (between
// the markers below, replaced on every run). Run it through xtask, which starts the servers.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { ADMIN_KEY, api, createKey, tenantName } from "../support/api.mjs";
import { BASE } from "../support/env.mjs";
import { f1, f2, goal, median } from "./common.mjs";

const run = promisify(execFile);
const OUT = process.env.BENCH_OUT ?? "target/bench";
const CLI = process.env.LOCKER_CLI;
const RCLONE = process.env.RCLONE;
const S3_URL = process.env.LOCKER_S3_URL;
const BUCKET = process.env.LOCKER_S3_CLI_BUCKET;
const CHECKSUM_BUCKET = process.env.LOCKER_S3_CHECKSUM_BUCKET;
const GiB = 1 << 30;
/** Reservations per batch request of `locker put` (locker_core::api::BATCH_MAX). */
const BATCH = 100;
const REPS = 3;
const INPUTS = join(OUT, "cli-inputs");
mkdirSync(INPUTS, { recursive: true });
process.on("exit", () => rmSync(INPUTS, { recursive: true, force: true }));

const now = () => performance.now();

/** Registers `name` (a folder of s3s-fs) with verification policy `verify`; its id. */
async function register(name, verify) {
  const res = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name, provider: "s3", endpoint: S3_URL, region: "us-east-1", verify },
  });
  if (res.status !== 201) throw new Error(`bucket ${name}: ${res.text}`);
  return res.data.id;
}
/** The two policies, each in a bucket registration of its own (one folder each in s3s-fs). */
const POLICIES = [
  { verify: "read_back", name: BUCKET, id: await register(BUCKET, "read_back") },
  { verify: "checksum", name: CHECKSUM_BUCKET, id: await register(CHECKSUM_BUCKET, "checksum") },
];
const bucketId = POLICIES[0].id;

/** A fresh tenant (so nothing dedups against an earlier rep) whose namespaces go to s3s-fs. */
async function routedKey(label, bucket = bucketId) {
  const { key } = await createKey(tenantName(label));
  const r = await api("PUT", "/v1/routes/*", { key, json: { bucket_id: bucket } });
  if (r.status !== 200) throw new Error(`route: ${r.text}`);
  return key;
}

async function locker(args, key) {
  const t = now();
  const { stdout } = await run(CLI, [...args, "--json"], {
    env: { ...process.env, LOCKER_URL: BASE, LOCKER_KEY: key, LOCKER_CONFIG: join(INPUTS, "none.toml") },
    maxBuffer: 64 << 20,
  });
  const ms = now() - t;
  const summary = JSON.parse(stdout);
  if (summary.failed) throw new Error(`locker put: ${summary.failed} failed`);
  return { ms, summary };
}

const rows = [];
const row = (r) => {
  rows.push(r);
  console.log(r.join(" | "));
};
const notes = [];

// ---------- one 1 GiB file: locker put vs curl PUT of the same bytes, on both policies ----------
// BENCH_CLI_MANY_ONLY=1 measures the 1,000 files alone (minutes less on a shared machine).
if (!process.env.BENCH_CLI_MANY_ONLY) {
  const file = join(INPUTS, "one.bin");
  const fd = openSync(file, "w");
  const chunk = randomBytes(16 << 20);
  for (let i = 0; i < GiB / chunk.length; i++) {
    chunk.writeUInt32LE(i, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const sha = (await run("sha256sum", [file])).stdout.slice(0, 64);
  /**
   * `locker put` as it runs by default (the Worker plans: parts into a read_back bucket, one PUT
   * into a checksum one), and with the other plan forced, to show what each costs there.
   */
  const PLANS = {
    read_back: [
      { plan: "default: the Worker plans parts", args: [] },
      { plan: "one PUT forced: `--multipart-threshold 2GiB`", args: ["--multipart-threshold", String(2 * GiB)] },
    ],
    checksum: [
      { plan: "default: the Worker plans one PUT", args: [] },
      { plan: "parts forced: `--multipart-threshold 64MiB`", args: ["--multipart-threshold", String(64 << 20)] },
    ],
  };
  const ms = {};
  const at = (...k) => {
    const name = k.join("/");
    ms[name] ??= [];
    return ms[name];
  };
  for (let rep = 0; rep < REPS; rep++) {
    for (const policy of POLICIES) {
      for (const { plan, args } of PLANS[policy.verify]) {
        const key = await routedKey("bench-cli-big", policy.id);
        const { ms: total, summary } = await locker(["put", ...args, file, `locker://big/r${rep}.bin`], key);
        if (summary.stored !== 1) throw new Error("1 GiB was not stored");
        const timings = summary.files[0].ms;
        at(policy.verify, plan, "total").push(total);
        at(policy.verify, plan, "complete").push(timings.complete);
        at(policy.verify, plan, "transfer").push(timings.transfer);
        at(policy.verify, plan, "hash").push(timings.hash);
        rmSync(join(process.env.LOCKER_S3_ROOT, policy.name, "t"), { recursive: true, force: true });
      }
      // curl: only the PUT is timed (reserve and complete are not curl's to do), into the same
      // registration.
      const curlKey = await routedKey("bench-cli-curl", policy.id);
      const res = await api("POST", "/v1/uploads", {
        key: curlKey,
        // One PUT (the s3 transport takes up to 5 GB in one request): what curl can do alone.
        json: {
          namespace: "big",
          path: `c${rep}.bin`,
          sha256: sha,
          size: GiB,
          content_type: "application/octet-stream",
          multipart: false,
        },
      });
      if (res.status !== 201) throw new Error(`reserve: ${res.text}`);
      const headers = Object.entries(res.data.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
      const t = now();
      await run("curl", ["-sS", "--fail", "-o", "/dev/null", "-T", file, ...headers, res.data.url]);
      at(policy.verify, "curl").push(now() - t);
      const done = await api("POST", `/v1/uploads/${res.data.upload_id}/complete`, { key: curlKey });
      if (done.status !== 200) throw new Error(`complete: ${done.text}`);
      rmSync(join(process.env.LOCKER_S3_ROOT, policy.name, "t"), { recursive: true, force: true });
    }
  }
  const rate = (xs) => GiB / 1e6 / (median(xs) / 1000);
  const ratios = {};
  for (const policy of POLICIES) {
    const c = rate(at(policy.verify, "curl"));
    for (const [i, { plan }] of PLANS[policy.verify].entries()) {
      const l = rate(at(policy.verify, plan, "total"));
      if (i === 0) ratios[policy.verify] = l / c;
      row([
        `1 GiB into a \`verify: ${policy.verify}\` bucket: \`locker put\` (${plan}; hash + reserve + PUT + complete) vs \`curl -T\` (the PUT alone, same bucket)`,
        `${f1(l)} MB/s`,
        `${f1(c)} MB/s`,
        `${f2(l / c)}x throughput`,
        i === 0 ? ">= 0.9x" : "-",
      ]);
      const t = (k) => f1(median(at(policy.verify, plan, k)) / 1000);
      notes.push(
        `\`${policy.verify}\`, ${plan}: hash ${t("hash")} s, transfer ${t("transfer")} s, complete ${t("complete")} s, curl's PUT ${f1(median(at(policy.verify, "curl")) / 1000)} s (medians).`,
      );
    }
  }
  notes.push(
    goal(
      ratios.checksum >= 0.9,
      `\`locker put\` of 1 GiB at >= 0.9x \`curl -T\`'s throughput: ${f2(ratios.checksum)}x into a bucket registered with \`verify: checksum\` (needs a server that refuses a wrong checksum and honours If-None-Match atomically, README), ${f2(ratios.read_back)}x with the default \`verify: read_back\`.`,
    ),
    "1 GiB: `complete` of parts combines them in s3s-fs (CompleteMultipartUpload writes the object again) and reads the object back in 8 MiB ranged GETs to hash it, under either policy; of one PUT it reads it back under `read_back`, and only HEADs it (and reads its first 16 bytes) under `checksum`. The hash runs before the PUT: the reservation needs the digest (dedup, and the signed `x-amz-checksum-sha256`).",
  );
}

// ---------- 1,000 files of 4-64 KB: locker put -j 16 vs rclone copy --transfers 16 ----------
{
  const dir = join(INPUTS, "many");
  for (let i = 0; i < 1000; i++) {
    const sub = join(dir, `d${i % 10}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(4096 + Math.floor(Math.random() * 60 * 1024)));
  }
  const key = await routedKey("bench-cli-many");
  const first = await locker(["put", "-j", "16", dir, "locker://many/run/"], key);
  const again = await locker(["put", "-j", "16", dir, "locker://many/run/"], key);
  if (again.summary.deduplicated !== 1000 || again.summary.bytes_sent !== 0)
    throw new Error("re-run was not all dedup");
  if (RCLONE && existsSync(RCLONE)) {
    // AWS_* variables of the machine (a CA bundle, a profile) are not rclone's business here.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AWS_")));
    Object.assign(env, {
      RCLONE_CONFIG_S3FS_TYPE: "s3",
      RCLONE_CONFIG_S3FS_PROVIDER: "Other",
      RCLONE_CONFIG_S3FS_ENDPOINT: S3_URL,
      RCLONE_CONFIG_S3FS_REGION: "us-east-1",
      RCLONE_CONFIG_S3FS_ACCESS_KEY_ID: process.env.LOCKER_S3_ACCESS_KEY,
      RCLONE_CONFIG_S3FS_SECRET_ACCESS_KEY: process.env.LOCKER_S3_SECRET_KEY,
      RCLONE_CONFIG_S3FS_FORCE_PATH_STYLE: "true",
    });
    const rclone = async () => {
      const t = now();
      await run(
        RCLONE,
        ["copy", dir, `s3fs:${BUCKET}/rclone-run`, "--transfers", "16", "--checkers", "16", "--s3-no-check-bucket"],
        { env },
      );
      return now() - t;
    };
    const r1 = await rclone();
    const r2 = await rclone();
    row([
      "1,000 files of 4-64 KB, first run: `locker put -j 16` vs `rclone copy --transfers 16`",
      `${f1(first.ms / 1000)} s`,
      `${f1(r1 / 1000)} s`,
      `${f2(first.ms / r1)}x time`,
      "<= 1.0x",
    ]);
    row([
      "the same again (locker: all dedup, 0 bytes sent; rclone: all unchanged)",
      `${f1(again.ms / 1000)} s`,
      `${f1(r2 / 1000)} s`,
      `${f2(again.ms / r2)}x time`,
      "<= 0.3x",
    ]);
  } else {
    row(["1,000 files of 4-64 KB, first run: `locker put -j 16`", `${f1(first.ms / 1000)} s`, "-", "-", "-"]);
    row(["the same again (all dedup, 0 bytes sent)", `${f1(again.ms / 1000)} s`, "-", "-", "-"]);
    notes.push("rclone is not installed and could not be installed here: its side was not measured.");
  }
  const perFile = (run) => {
    const files = run.summary.files;
    const avg = (f) => files.reduce((a, x) => a + f(x.ms), 0) / files.length;
    return `hash ${f1(avg((m) => m.hash))} ms, reserve ${f1(avg((m) => m.reserve))} ms, transfer ${f1(avg((m) => m.transfer))} ms, complete ${f1(avg((m) => m.complete))} ms`;
  };
  notes.push(
    `1,000 files: each stored file is one PUT to s3s-fs and one \`complete\` to the Worker; reservations go ${BATCH} to a \`POST /v1/uploads:batch\` request (a dedup re-run is only those batches). Per file on average, first run: ${perFile(first)}; re-run: ${perFile(again)} (a batch's time counts for each of its files). rclone talks to s3s-fs alone. The Worker runs under \`wrangler dev\` with local D1 on 2 shared cores.`,
  );
}

const table = [
  "| what | locker | rival | ratio | target |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.join(" | ")} |`),
].join("\n");
const section = `<!-- cli-bench -->
## The \`locker\` CLI against curl and rclone

Same S3 server (s3s-fs on loopback) for all, the s3 transport, release build of the CLI; 1 GiB: median of ${REPS} runs. The two verification policies are two bucket registrations of that server (folders \`${BUCKET}\`, \`verify: read_back\`, and \`${CHECKSUM_BUCKET}\`, \`verify: checksum\`; s3s-fs does not qualify for \`checksum\`, README, so that row shows what the policy costs on a server that does). curl PUTs into the same registration as each row.

${table}

${notes.map((n) => `- ${n}`).join("\n")}
<!-- /cli-bench -->
`;
console.log(`\n${section}`);
const old = existsSync("BENCHMARKS.md") ? readFileSync("BENCHMARKS.md", "utf8") : "# Benchmarks\n";
const marked = /<!-- cli-bench -->[\s\S]*<!-- \/cli-bench -->\n?/;
writeFileSync("BENCHMARKS.md", marked.test(old) ? old.replace(marked, section) : `${old.trimEnd()}\n\n${section}`);
console.log("wrote the CLI section of BENCHMARKS.md");
