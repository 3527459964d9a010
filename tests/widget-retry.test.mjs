// The widget recovers: a failed or stalled transfer is retried, an expired token or upload URL
// is renewed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { BASE, launchBrowser } from "./support/env.mjs";
import { api, bytes, sha256hex, stats } from "./support/api.mjs";
import { pick, recordRequests, rowIn, uploadPastExpiry, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("a transfer that fails once is retried and succeeds", async () => {
  const { page, errors, key } = await widgetPage(browser, "retry");
  let attempts = 0;
  await page.route("**/v1/data/**", async (route) => {
    attempts += 1;
    if (attempts === 1) await route.abort("connectionreset");
    else await route.continue();
  });
  const data = bytes(200 * 1024, "retry-");
  await pick(page, [{ name: "flaky.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "flaky.bin", "stored");
  assert.equal(attempts, 2);
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.equal(s.objects, 1);
  assert.equal((await api("GET", "/v1/files/demo/flaky.bin", { key })).data.sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a transfer that stalls is aborted after stall-timeout and retried", async () => {
  // A stand-in for a link that goes silent mid-transfer (no reset, no answer), which the local
  // Worker cannot be made to do: the first transfer's request is held and never answered.
  const { page, errors, key } = await widgetPage(browser, "stall");
  await page.locator("locker-upload").evaluate((el) => el.setAttribute("stall-timeout", "1000"));
  let attempts = 0;
  let held;
  await page.route("**/v1/data/**", async (route) => {
    attempts += 1;
    if (attempts === 1) {
      held = Date.now();
      return; // never continued, fulfilled or aborted
    }
    await route.continue();
  });
  const data = bytes(150 * 1024, "stall-");
  await pick(page, [{ name: "silent.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "silent.bin", "stored");
  assert.equal(attempts, 2);
  assert.ok(Date.now() - held >= 1000, "the retry came after the stall timeout, not before");
  assert.equal((await api("GET", "/v1/files/demo/silent.bin", { key })).data.sha256, sha256hex(data));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a transfer whose answer is slower than stall-timeout is not sent again", async () => {
  // A stand-in for storage that takes long to answer a body it has fully received (a part
  // answered 201 after 30 s has been seen), which the local Worker cannot be made to do: the
  // PUT goes through a Node proxy that reads the whole body (so the browser really sends it and
  // sees it sent), forwards it to the Worker, and holds the Worker's answer for 3 s, three
  // times stall-timeout.
  const { page, errors, key } = await widgetPage(browser, "slowanswer");
  await page.locator("locker-upload").evaluate((el) => el.setAttribute("stall-timeout", "1000"));
  let puts = 0;
  const proxy = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (req.method === "PUT") puts += 1;
    const headers = { ...req.headers };
    delete headers.host;
    delete headers["content-length"];
    const answer = await fetch(new URL(req.url, BASE), {
      method: req.method,
      headers,
      body: req.method === "PUT" ? Buffer.concat(chunks) : undefined,
    });
    const body = Buffer.from(await answer.arrayBuffer());
    if (req.method === "PUT") await new Promise((r) => setTimeout(r, 3000));
    const out = {};
    answer.headers.forEach((v, k) => {
      if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(k)) out[k] = v;
    });
    res.writeHead(answer.status, out);
    res.end(body);
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const via = `http://127.0.0.1:${proxy.address().port}`;
  await page.route("**/v1/data/**", (route) => {
    const u = new URL(route.request().url());
    return route.continue({ url: via + u.pathname + u.search });
  });
  try {
    const data = bytes(2 * 1024 * 1024, "slow-answer-");
    await pick(page, [{ name: "patient.bin", mimeType: "application/octet-stream", buffer: data }]);
    await rowIn(page, "patient.bin", "stored");
    assert.equal(puts, 1, "the body was sent again while its answer was awaited");
    assert.equal((await api("GET", "/v1/files/demo/patient.bin", { key })).data.sha256, sha256hex(data));
    assert.deepEqual(errors, []);
  } finally {
    proxy.close();
    await page.close();
  }
});

test("an expired token is renewed through the token route", async () => {
  const { page, errors, key, minted } = await widgetPage(browser, "renew", { ttl: 2 });
  await pick(page, [{ name: "first.bin", mimeType: "application/octet-stream", buffer: bytes(1000) }]);
  await rowIn(page, "first.bin", "stored");
  const before = minted.length;
  await new Promise((r) => setTimeout(r, 3000));
  await pick(page, [{ name: "second.bin", mimeType: "application/octet-stream", buffer: bytes(1000) }]);
  await rowIn(page, "second.bin", "stored");
  assert.ok(minted.length > before, "no new token was asked for");
  assert.equal((await stats(key)).files, 2);
  assert.deepEqual(errors, []);
  await page.close();
});

test("an expired upload URL (worker transport) is replaced by a fresh reservation", async () => {
  // Real expiry: URLs that live 3 s, the first PUT held until its URL is past that, then sent
  // on to the Worker, whose data plane refuses it. The s3 transport does the same in
  // direct-s3-widget.test.mjs.
  const { page, errors, key } = await widgetPage(browser, "reurl");
  const requests = recordRequests(page);
  const minted = await api("POST", "/v1/tokens", { key, json: { namespace: "demo" } });
  const data = bytes(5000, "late-");
  const outcome = await uploadPastExpiry(page, {
    pattern: "**/v1/data/**",
    token: minted.data.token,
    namespace: "demo",
    expiresIn: 3,
    data,
    name: "late.bin",
  });
  assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
  assert.equal(outcome.result.ref, "locker://demo/late.bin");
  assert.equal(outcome.puts.length, 2);
  assert.equal(outcome.puts[0].status, 403);
  assert.equal(JSON.parse(outcome.puts[0].body).error.code, "expired");
  assert.equal(outcome.puts[1].status, 201);
  assert.deepEqual(outcome.retries, [], "an expired URL is renewed, not retried as it is");
  const reserves = requests.filter((r) => r.method === "POST" && r.url.endsWith("/v1/uploads"));
  assert.equal(reserves.length, 2);
  assert.equal((await api("GET", "/v1/files/demo/late.bin", { key })).data.sha256, sha256hex(data));
  const s = await stats(key);
  assert.equal(s.files, 1);
  assert.deepEqual(s.uploads, { pending: 0, committed: 1, aborted: 1, expired: 0 });
  assert.deepEqual(errors, []);
  await page.close();
});
