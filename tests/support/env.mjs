// What `cargo xtask test` hands the end-to-end tests: the Worker under `wrangler dev` and a
// Chromium. Run the tests through xtask; it starts and stops the server.
import { chromium } from "playwright-core";

export const BASE = process.env.LOCKER_URL;
if (!BASE) {
  throw new Error("LOCKER_URL is not set: run the end-to-end tests with `cargo xtask test`");
}

// Flags from TOOLCHAIN.md: without the background-networking ones Chromium stalls on the
// closed network of these machines.
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Starts headless Chromium; the caller closes it. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/**
 * Starts headless Chromium with a profile kept in `dir`: IndexedDB survives closing it, so a
 * context closed mid-upload and launched again on the same `dir` is a page reloaded after a
 * crash. The caller closes it.
 */
export async function launchPersistent(dir) {
  return chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/** Opens a page that fails the test on any uncaught page error. */
export async function openPage(browser, path = "/") {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(new URL(path, BASE).href);
  return { page, errors };
}
