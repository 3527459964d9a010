// Runs the `locker` CLI (built by xtask, path in LOCKER_CLI) against the Worker under test.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BASE } from "./env.mjs";

export const CLI = process.env.LOCKER_CLI;
if (!CLI) {
  throw new Error("LOCKER_CLI is not set: run the end-to-end tests with `cargo xtask test`");
}

/** A fresh empty directory for a test's files and config. */
export function scratch(label) {
  return mkdtempSync(join(tmpdir(), `locker-cli-${label}-`));
}

/**
 * Runs `locker ...args` with `key` (LOCKER_URL is the Worker's); `env` adds or replaces
 * variables (undefined removes one). A config file of its own is named so the user's is never
 * read. Resolves to {code, stdout, stderr, json} (json: stdout parsed when it is JSON).
 */
export function locker(args, { key, env = {}, input, cwd } = {}) {
  const base = { ...process.env, LOCKER_URL: BASE, LOCKER_CONFIG: join(scratch("cfg"), "config.toml") };
  delete base.LOCKER_KEY;
  delete base.LOCKER_PROFILE;
  if (key) base.LOCKER_KEY = key;
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return new Promise((resolve, reject) => {
    // No input: stdin is /dev/null. With input, a CLI that exits before reading it (a usage
    // error) closes the pipe; that EPIPE is the CLI's business, not a test failure.
    const child = spawn(CLI, args, {
      env: base,
      cwd,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString();
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr: Buffer.concat(err).toString(), json });
    });
    if (input !== undefined) {
      child.stdin.on("error", (e) => {
        if (e.code !== "EPIPE") reject(e);
      });
      child.stdin.end(input);
    }
  });
}
