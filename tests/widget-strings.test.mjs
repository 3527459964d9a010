// The widget's strings come from one table a page can replace (i18n), in headless Chromium
// against the real Worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser } from "./support/env.mjs";
import { bytes } from "./support/api.mjs";
import { pick, rowIn, widgetPage } from "./support/widget.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

test("a page replaces the widget's strings in part; the rest stay English", async () => {
  const { page, errors } = await widgetPage(browser, "strings");
  const english = await page.evaluate(async () => {
    const { LockerUpload, STRINGS } = await import(new URL("/locker-upload.js", location.href).href);
    LockerUpload.strings = {
      stored: "Gespeichert",
      chooseFile: "Datei wählen",
      chooseFiles: "Dateien wählen",
      announce: (name, status) => `${status}: ${name}`,
    };
    // Attributes re-render the button's label.
    const el = document.querySelector("locker-upload");
    el.toggleAttribute("multiple", !el.hasAttribute("multiple"));
    el.toggleAttribute("multiple", !el.hasAttribute("multiple"));
    return { stored: STRINGS.stored, waiting: LockerUpload.strings.waiting };
  });
  assert.deepEqual(english, { stored: "Stored", waiting: "Waiting…" });
  assert.match(await page.locator("locker-upload button.pick").textContent(), /^Datei(en)? wählen$/);
  await pick(page, [{ name: "hallo.bin", mimeType: "application/octet-stream", buffer: bytes(3000, "i18n-") }]);
  const row = await rowIn(page, "hallo.bin", "stored");
  assert.match(await row.textContent(), /Gespeichert/);
  assert.equal(await page.locator("locker-upload [aria-live]").textContent(), "Gespeichert: hallo.bin");
  assert.equal(await row.getByRole("button", { name: "Remove hallo.bin" }).count(), 1);
  assert.deepEqual(errors, []);
  await page.close();
});
