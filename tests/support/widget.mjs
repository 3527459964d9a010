// Helpers for driving the <locker-upload> widget on the demo page in Chromium.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { api, createKey, tenantName } from "./api.mjs";
import { openPage } from "./env.mjs";

/**
 * A fresh tenant with a key, and the demo page with its token route answered by a token that
 * this tenant's key minted: the test plays the site backend the README asks for, so each test
 * sees only its own files. `token` are extra POST /v1/tokens fields (max_size, types, ...).
 */
export async function widgetPage(browser, label, token = {}) {
  const tenant = tenantName(label);
  const { key } = await createKey(tenant);
  const { page, errors } = await openPage(browser, "/");
  const minted = [];
  await page.route("**/demo/token", async (route) => {
    const res = await api("POST", "/v1/tokens", { key, json: { namespace: "demo", ...token } });
    assert.equal(res.status, 201, res.text);
    minted.push(res.data);
    await route.fulfill({ json: res.data });
  });
  return { page, errors, key, tenant, minted };
}

/** Picks files through the widget's file input. `files`: [{name, mimeType, buffer}]. */
export async function pick(page, files) {
  await page.locator("locker-upload input[type=file]").setInputFiles(files);
}

/** The widget row of `name` once it reached `state`. */
export async function rowIn(page, name, state, timeout = 60_000) {
  const row = page.locator(`locker-upload li[data-state="${state}"]`, { hasText: name });
  await row.waitFor({ timeout });
  return row;
}

/** Every request the page makes, for asserting what went over the wire. */
export function recordRequests(page) {
  const seen = [];
  page.on("request", (r) => seen.push({ method: r.method(), url: r.url(), bytes: r.postDataBuffer()?.length ?? 0 }));
  return seen;
}

/** Resident memory (bytes) of the renderer processes of the Chromium this test process runs. */
export function rendererRss() {
  const parent = new Map();
  const cmdline = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      parent.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      cmdline.set(pid, readFileSync(`/proc/${pid}/cmdline`, "utf8"));
    } catch {
      // The process ended while we looked.
    }
  }
  const mine = (pid) => {
    for (let p = pid; p && p !== "0" && p !== "1"; p = parent.get(p)) {
      if (p === String(process.pid)) return true;
    }
    return false;
  };
  let total = 0;
  for (const [pid, cmd] of cmdline) {
    if (!cmd.includes("--type=renderer") || !mine(pid)) continue;
    try {
      const rss = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
      total += Number(rss?.[1] ?? 0) * 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/**
 * Runs `work` while sampling rendererRss() every 50 ms, after a second to let the page settle.
 * Returns what `work` returned, the RSS before, and the peak during it (bytes).
 */
export async function withPeakRss(work) {
  await new Promise((r) => setTimeout(r, 1000));
  const baseline = rendererRss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rendererRss());
  }, 50);
  try {
    const result = await work();
    return { result, baseline, peak: Math.max(peak, rendererRss()) };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * Uploads `data` as `name` with the browser module itself (the `Uploader`, as a page without
 * the widget would), with an upload token and signed URLs that live `expiresIn` seconds. The
 * first PUT matching `pattern` is held until its URL has expired, then let go on to the real
 * server, which refuses it as expired. Returns what `upload()` gave (`result`, or `error`
 * `{code, message, status}`), the codes of its `retry` events, and every PUT's answer
 * (`puts`: `{status, body}`).
 */
export async function uploadPastExpiry(page, { pattern, token, namespace, expiresIn, data, name }) {
  const answers = [];
  const onResponse = (r) => {
    if (r.request().method() === "PUT")
      answers.push(
        r.text().then(
          (body) => ({ status: r.status(), body }),
          () => ({ status: r.status(), body: "" }),
        ),
      );
  };
  page.on("response", onResponse);
  let puts = 0;
  await page.route(pattern, async (route) => {
    if (route.request().method() === "PUT" && ++puts === 1) {
      // The URL was signed just before this PUT; its date is whole seconds, so one more
      // second on top makes sure the server sees it expired.
      await new Promise((r) => setTimeout(r, (expiresIn + 2) * 1000));
    }
    await route.continue();
  });
  try {
    const outcome = await page.evaluate(
      async ({ token, namespace, expiresIn, bytes, name }) => {
        const { loadModule } = await import(new URL("/locker-upload.js", location.href).href);
        const { Uploader } = await import(new URL("/pkg/locker_web.js", location.href).href);
        await loadModule();
        const uploader = new Uploader({ endpoint: location.origin, namespace, token, expiresIn });
        const retries = [];
        uploader.addEventListener("retry", (e) => retries.push(e.detail.error.code));
        const file = new File([new Uint8Array(bytes)], name, { type: "application/octet-stream" });
        try {
          return { result: await uploader.upload(file), retries };
        } catch (e) {
          return { error: { code: e.code, message: e.message, status: e.status }, retries };
        }
      },
      { token, namespace, expiresIn, bytes: [...data], name },
    );
    return { ...outcome, puts: await Promise.all(answers) };
  } finally {
    page.off("response", onResponse);
    await page.unroute(pattern);
  }
}

/** Polls `check` every 25 ms until it holds; throws after `timeout` ms. */
export async function waitUntil(check, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${check}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
