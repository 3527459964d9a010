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
