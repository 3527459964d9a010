// Helpers every bench script uses: one definition of the median, the number formats, the
// Markdown table and the met/missed line, so the sections of BENCHMARKS.md read alike.

/** The median of `xs` (the mean of the middle two for an even count). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** MB/s (10^6 bytes per second) of `bytes` in `ms` milliseconds. */
export const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000);
export const f0 = (x) => x.toFixed(0);
export const f1 = (x) => x.toFixed(1);
export const f2 = (x) => x.toFixed(2);
/** A Markdown table of `head` and `rows` (arrays of cells). */
export const table = (head, rows) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join(
    "\n",
  );
/** A goal's line: **met** or **missed**, then what was measured against what. */
export const goal = (met, text) => `${met ? "**met**" : "**missed**"}: ${text}`;

/**
 * Worker source (text) of `readInto(file, update)`: hash-wasm's side reads a file exactly as
 * locker-web does (a BYOB reader into a reused 4 MiB buffer) and, as locker-web does, goes on
 * with 4 MiB slices from where it was when a read gives nothing for 20 s (Chromium's Blob
 * stream has been seen to stop for good; without this a whole bench run hung on it).
 */
export const READ_INTO = `
  async function readInto(file, update) {
    const byob = file.stream().getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(4 << 20);
    let at = 0;
    for (;;) {
      const stalled = new Promise((r) => setTimeout(() => r(null), 20000));
      const got = await Promise.race([byob.read(new Uint8Array(buffer)), stalled]);
      if (got === null) {
        byob.cancel().catch(() => {});
        for (; at < file.size; at += 4 << 20) {
          update(new Uint8Array(await file.slice(at, at + (4 << 20)).arrayBuffer()));
        }
        return;
      }
      if (got.done) return;
      update(got.value);
      at += got.value.length;
      buffer = got.value.buffer;
    }
  }`;
