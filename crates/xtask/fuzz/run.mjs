// `cargo xtask fuzz`, inside the staged environment (fresh wrangler dev + s3s-fs): makes a
// tenant key and an upload token with the bootstrap admin key, then runs schemathesis against
// the Worker's own /openapi.json once per credential, and sums up. Exits non-zero on any
// finding: a 5xx, or a response the description does not allow (status, content type, body),
// or bad input that was accepted.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.LOCKER_URL;
const ADMIN = process.env.LOCKER_ADMIN_KEY;
const BIN = process.env.SCHEMATHESIS;
const OUT = join(process.env.FUZZ_OUT, `run-${process.pid}`);
const CASES = Number(process.env.FUZZ_CASES ?? 20000);

// Checks that judge a response by the description alone. Left out: positive_data_acceptance
// (a valid request may rightly be refused: an unknown id is 404, another tenant's file too,
// a size over the key's limit 413), and the stateful ones, which need links.
const CHECKS = [
  "not_a_server_error",
  "status_code_conformance",
  "content_type_conformance",
  "response_headers_conformance",
  "response_schema_conformance",
  "negative_data_rejection",
  "missing_required_header",
  "ignored_auth",
  "unsupported_method",
  "allow_header_conformance",
  "use_after_free",
  "ensure_resource_availability",
];

async function call(method, path, key, json) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(json),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const tenant = await call("POST", "/v1/keys", ADMIN, {
  tenant: "fuzz",
  namespaces: ["*"],
  ops: ["read", "write", "delete", "admin"],
  label: "cargo xtask fuzz",
});
const token = await call("POST", "/v1/tokens", tenant.key, {
  namespace: "fuzz",
  path_prefix: "",
  ttl: 3600,
});

const doc = await (await fetch(`${BASE}/openapi.json`)).json();
const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
const credentials = [
  ["admin", ADMIN],
  ["tenant", tenant.key],
  ["token", token.token],
];
// The fuzzing phase makes up to this many cases per operation; the examples and coverage
// phases add their own (boundaries and every kind of invalid value), so a run makes more.
const perOperation = Math.max(1, Math.ceil(CASES / (operations * credentials.length)));

function schemathesis(label, key) {
  const dir = join(OUT, label);
  mkdirSync(dir, { recursive: true });
  const args = [
    "run",
    `${BASE}/openapi.json`,
    "--header",
    `Authorization: Bearer ${key}`,
    "--checks",
    CHECKS.join(","),
    "--phases",
    "examples,coverage,fuzzing,stateful",
    "--max-examples",
    String(perOperation),
    "--continue-on-failure",
    "--suppress-health-check",
    "all",
    "--workers",
    "2",
    "--request-timeout",
    "30",
    "--report",
    "junit,ndjson",
    "--report-dir",
    dir,
    "--output-truncate",
    "false",
  ];
  console.log(`\n--- schemathesis with the ${label} credential (${perOperation} fuzzed cases per operation)`);
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: dir, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1" } });
    let text = "";
    child.stdout.on("data", (chunk) => {
      text += chunk;
      process.stdout.write(chunk);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      writeFileSync(join(dir, "output.txt"), text);
      resolve({ label, code, text, dir });
    });
  });
}

const runs = [];
for (const [label, key] of credentials) runs.push(await schemathesis(label, key));

// schemathesis's summary line: "Test cases:  N generated, M found K unique failures, ..."
const generated = (text) => Number(/Test cases:\s*(\d+) generated/.exec(text)?.[1] ?? NaN);
let total = 0;
console.log("\n=== cargo xtask fuzz: summary");
for (const r of runs) {
  const n = generated(r.text);
  total += Number.isNaN(n) ? 0 : n;
  console.log(`${r.label.padEnd(7)} ${String(n).padStart(6)} cases  ${r.code === 0 ? "no findings" : `FINDINGS (exit ${r.code}), see ${r.dir}`}`);
}
console.log(`total   ${String(total).padStart(6)} cases against ${operations} operations; reports in ${OUT}`);
const failed = runs.filter((r) => r.code !== 0);
if (failed.length) {
  console.log(`fuzz: ${failed.length} of ${runs.length} runs found problems`);
  process.exit(1);
}
console.log("fuzz: no 5xx, no response outside the description, no bad input accepted");
