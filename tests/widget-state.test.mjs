// The Uploader's `state-change` events and file ids (locker-core's upload_state, driven by the
// browser module), in headless Chromium against the real Worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser } from "./support/env.mjs";
import { api, stats } from "./support/api.mjs";
import { widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/**
 * Runs `uploads` ([{name, size, prefix, id}]) one after the other through one Uploader on the
 * page, and returns every `state-change` and the outcome of each upload.
 */
async function uploadAll(page, key, uploads, token = {}) {
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo", ...token } });
  assert.equal(minted.status, 201, minted.text);
  return page.evaluate(
    async ({ token, uploads }) => {
      const { loadModule } = await import(new URL("/locker-upload.js", location.href).href);
      const { Uploader } = await import(new URL("/pkg/locker_web.js", location.href).href);
      await loadModule();
      const uploader = new Uploader({ endpoint: location.origin, namespace: "demo", token, retryDelay: 10 });
      const events = [];
      uploader.addEventListener("state-change", (e) => {
        const { id, state, previous, loaded, total, attempt, error, file } = e.detail;
        events.push({ id, state, previous, loaded, total, attempt, error: error?.code ?? null, name: file.name });
      });
      const outcomes = [];
      for (const u of uploads) {
        const data = new Uint8Array(u.size).map((_, i) => (u.prefix.charCodeAt(i % u.prefix.length) + i) & 0xff);
        const file = new File([data], u.name, { type: "application/octet-stream" });
        try {
          outcomes.push({ result: await uploader.upload(file, u.id ? { id: u.id } : {}) });
        } catch (e) {
          outcomes.push({ error: { code: e.code, status: e.status } });
        }
      }
      return { events, outcomes };
    },
    { token: minted.data.token, uploads },
  );
}

/** The states one upload went through, repeated progress events folded into one. */
function course(events, id) {
  const mine = events.filter((e) => e.id === id);
  return mine.map((e) => e.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);
}

/** Each event names the state before it, and progress never goes back within a run. */
function assertConsistent(events, id) {
  const mine = events.filter((e) => e.id === id);
  assert.ok(mine.length > 0, `no events for ${id}`);
  for (const [i, e] of mine.entries()) {
    const before = mine[i - 1];
    assert.equal(e.previous, before ? before.state : null, `event ${i} of ${id}`);
    assert.ok(e.loaded <= e.total, `event ${i} of ${id}: ${e.loaded} > ${e.total}`);
    if (before && before.state === e.state) {
      assert.ok(e.loaded >= before.loaded, `progress went back in ${e.state}: ${before.loaded} -> ${e.loaded}`);
    }
  }
}

test("every upload has a stable id and a state-change for every transition, in order", async () => {
  const { page, errors, key } = await widgetPage(browser, "states");
  const size = 300 * 1024;
  const { events, outcomes } = await uploadAll(page, key, [
    { name: "first.bin", size, prefix: "states-", id: "mine-1" },
    // The same bytes under another name: deduplicated, with an id made up by the Uploader.
    { name: "again.bin", size, prefix: "states-" },
  ]);
  assert.equal(outcomes[0].result.id, "mine-1");
  assert.equal(outcomes[0].result.deduplicated, false);
  assert.deepEqual(course(events, "mine-1"), [
    "waiting",
    "hashing",
    "reserving",
    "transferring",
    "completing",
    "stored",
  ]);
  assertConsistent(events, "mine-1");
  const last = events.filter((e) => e.id === "mine-1").at(-1);
  assert.deepEqual([last.loaded, last.total, last.attempt, last.error], [size, size, 0, null]);

  const made = outcomes[1].result.id;
  assert.match(made, /^upload-\d+$/);
  assert.equal(outcomes[1].result.deduplicated, true);
  assert.deepEqual(course(events, made), ["waiting", "hashing", "reserving", "deduplicated"]);
  assertConsistent(events, made);
  assert.ok(
    events.filter((e) => e.name === "again.bin").every((e) => e.id === made),
    "every event of the file carries its id",
  );
  assert.equal((await stats(key)).files, 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a refused upload ends failed; its id again restarts it from failed; a running id is refused", async () => {
  const { page, errors, key } = await widgetPage(browser, "restart");
  const { events, outcomes } = await uploadAll(
    page,
    key,
    [
      { name: "big.bin", size: 2000, prefix: "big-", id: "big" },
      { name: "big.bin", size: 2000, prefix: "big-", id: "big" },
    ],
    { max_size: 1000 },
  );
  assert.deepEqual(outcomes, [
    { error: { code: "too_large", status: 413 } },
    { error: { code: "too_large", status: 413 } },
  ]);
  const mine = events.filter((e) => e.id === "big");
  const failed = mine.filter((e) => e.state === "failed");
  assert.equal(failed.length, 2);
  assert.equal(failed[0].error, "too_large");
  assert.equal(failed[0].attempt, 0, "a 4xx refusal is not retried");
  // The second run starts where the first ended.
  const restart = mine.indexOf(failed[0]) + 1;
  assert.deepEqual([mine[restart].state, mine[restart].previous], ["waiting", "failed"]);
  assertConsistent(events, "big");

  const running = await page.evaluate(
    async (token) => {
      const { Uploader } = await import(new URL("/pkg/locker_web.js", location.href).href);
      const uploader = new Uploader({ endpoint: location.origin, namespace: "demo", token });
      const file = new File([new Uint8Array(5000)], "twice.bin", { type: "application/octet-stream" });
      const first = uploader.upload(file, { id: "twice" });
      const second = await uploader.upload(file, { id: "twice" }).then(
        () => "accepted",
        (e) => e.code,
      );
      return { second, first: (await first).id };
    },
    (await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } })).data.token,
  );
  assert.deepEqual(running, { second: "invalid_argument", first: "twice" });
  assert.equal((await stats(key)).files, 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a retried transfer stays transferring with its attempt counted, its progress never going back", async () => {
  const { page, errors, key } = await widgetPage(browser, "retry-state");
  let puts = 0;
  await page.route("**/v1/data/**", async (route) => {
    puts += 1;
    if (puts === 1) await route.abort("connectionreset");
    else await route.continue();
  });
  const { events, outcomes } = await uploadAll(page, key, [
    { name: "flaky.bin", size: 200 * 1024, prefix: "flaky-", id: "flaky" },
  ]);
  assert.equal(outcomes[0].result.id, "flaky");
  assert.equal(puts, 2);
  assert.deepEqual(course(events, "flaky"), [
    "waiting",
    "hashing",
    "reserving",
    "transferring",
    "completing",
    "stored",
  ]);
  const retry = events.find((e) => e.id === "flaky" && e.attempt === 1);
  assert.deepEqual([retry.state, retry.previous, retry.error], ["transferring", "transferring", "network"]);
  assertConsistent(events, "flaky");
  assert.deepEqual(errors, []);
  await page.close();
});
