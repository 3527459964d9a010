// The widget in a page: form submission carries the refs, drop and paste, and the keyboard alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, openPage } from "./support/env.mjs";
import { bytes } from "./support/api.mjs";
import { pick, rowIn, waitUntil, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("the form carries the refs, and `required` blocks it until an upload finished", async () => {
  // The demo page as shipped: its own token route (the demo tenant) and its echo route.
  const { page, errors } = await openPage(browser, "/");
  await page.locator("#submit").click();
  assert.equal(new URL(page.url()).pathname, "/");
  assert.equal(await page.$eval("#demo-form", (f) => f.checkValidity()), false);
  assert.equal(await page.$eval("locker-upload", (el) => el.validationMessage), "Upload a file first.");

  const data = bytes(4096, "form-");
  await pick(page, [{ name: "form.bin", mimeType: "application/octet-stream", buffer: data }]);
  await rowIn(page, "form.bin", "stored");
  const [ref] = await page.$eval("locker-upload", (el) => el.value);
  assert.equal(ref, "locker://demo/uploads/form.bin");
  const echoed = page.waitForResponse((r) => r.url().endsWith("/demo/echo"));
  await page.locator("#submit").click();
  const echo = await (await echoed).json();
  assert.deepEqual(echo.fields, [
    ["note", "hello"],
    ["files", ref],
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("files can be dropped on the widget or pasted into it", async () => {
  const { page, errors } = await widgetPage(browser, "drop");
  await page.$eval("locker-upload", (el) => {
    const dropped = new DataTransfer();
    dropped.items.add(new File(["dropped bytes"], "dropped.txt", { type: "text/plain" }));
    el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dropped, bubbles: true, cancelable: true }));
    el.dispatchEvent(new DragEvent("drop", { dataTransfer: dropped, bubbles: true, cancelable: true }));
    const pasted = new DataTransfer();
    pasted.items.add(new File(["pasted bytes"], "pasted.txt", { type: "text/plain" }));
    el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: pasted, bubbles: true, cancelable: true }));
  });
  await rowIn(page, "dropped.txt", "stored");
  await rowIn(page, "pasted.txt", "stored");
  assert.deepEqual(await page.$eval("locker-upload", (el) => el.value), [
    "locker://demo/dropped.txt",
    "locker://demo/pasted.txt",
  ]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the widget works with the keyboard alone", async () => {
  const { page, errors } = await widgetPage(browser, "keys");
  // Listen for the file chooser from the start: Playwright turns on its interception
  // asynchronously, and a chooser opened before that is never reported.
  const choosers = [];
  page.on("filechooser", (c) => choosers.push(c));
  await page.locator("#note").focus();
  await page.keyboard.press("Tab");
  const focused = () =>
    page.evaluate(() => {
      const host = document.activeElement;
      const inner = host?.shadowRoot?.activeElement;
      return {
        host: host?.id,
        label: inner?.getAttribute("aria-label") ?? inner?.textContent,
        outline: inner ? getComputedStyle(inner).outlineStyle : null,
      };
    });
  assert.deepEqual(await focused(), { host: "uploader", label: "Choose files", outline: "solid" });
  await page.keyboard.press("Enter");
  await waitUntil(() => choosers.length === 1);
  await choosers[0].setFiles([{ name: "keys.bin", mimeType: "application/octet-stream", buffer: bytes(1024) }]);
  await rowIn(page, "keys.bin", "stored");
  await page.keyboard.press("Tab");
  assert.deepEqual(await focused(), { host: "uploader", label: "Remove keys.bin", outline: "solid" });
  await page.keyboard.press("Enter");
  assert.equal(await page.locator("locker-upload li").count(), 0);
  assert.equal((await focused()).label, "Choose files");
  assert.deepEqual(errors, []);
  await page.close();
});
