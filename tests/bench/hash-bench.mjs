// The second half of `cargo xtask bench hash` (bench.mjs calls it): which hasher by file size
// (WebCrypto against the wasm worker), a mixed set of many files against hash-wasm, the pool of
// hash workers, and the read size. Same page, same run as the first half's 1 GiB table.
import { cpus } from "node:os";

const MiB = 1 << 20;

/**
 * `h`: bench.mjs's helpers and state ({page, writeFile, section, table, goal, median, mbps,
 * f0, f2, oneGiB, hashWasmUmd}).
 */
export async function hashBench(h) {
  const { page, writeFile, section, table, goal, median, mbps, f0, f2 } = h;
  await page.evaluate((hashWasm) => {
    // hash-wasm in one Web Worker kept for all files (none started per file: the fairest
    // baseline for many files), streaming each exactly as `hashWasmFile` does.
    const source = `${hashWasm}
      let hasher;
      onmessage = async (e) => {
        const [id, file] = e.data;
        hasher ??= await hashwasm.createSHA256();
        hasher.init();
        const byob = file.stream().getReader({ mode: "byob" });
        let buffer = new ArrayBuffer(4 << 20);
        for (;;) {
          const { value, done } = await byob.read(new Uint8Array(buffer));
          if (done) break;
          hasher.update(value);
          buffer = value.buffer;
        }
        postMessage([id, hasher.digest("hex")]);
      };`;
    const w = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    let next = 0;
    const waiting = new Map();
    w.onmessage = (e) => {
      const [id, digest] = e.data;
      waiting.get(id)(digest);
      waiting.delete(id);
    };
    window.hashWasmKept = (file) =>
      new Promise((resolve) => {
        next += 1;
        waiting.set(next, resolve);
        w.postMessage([next, file]);
      });
    /** Runs `f` over `items` with at most `n` in flight; resolves to the results in order. */
    window.inFlight = async (items, n, f) => {
      const out = new Array(items.length);
      let at = 0;
      const lane = async () => {
        while (at < items.length) {
          const i = at;
          at += 1;
          out[i] = await f(items[i]);
        }
      };
      await Promise.all(Array.from({ length: n }, lane));
      return out;
    };
  }, h.hashWasmUmd);

  // ---------- a. by size: WebCrypto, the wasm worker, hash-wasm ----------
  const SIZES = [4 * 1024, 64 * 1024, MiB, 8 * MiB, 64 * MiB];
  const bySize = [];
  for (const size of SIZES) {
    // Enough files of this size for about 64 MiB (at least 4: 256 MiB of Blobs at 64 MiB), in
    // memory, each distinct.
    const count = Math.max(4, Math.min(2000, Math.round((64 * MiB) / size)));
    const r = await page.evaluate(
      async ([size, count, reps]) => {
        const base = new Uint8Array(size).map((_, j) => (j * 31 + 7) & 255);
        // Each file distinct in its first 4 bytes.
        const blobs = Array.from({ length: count }, (_, i) => new Blob([new Uint32Array([i]), base.subarray(4)]));
        const ways = {
          webcrypto: (b) => locker.hashFile(b),
          wasm: (b) => locker.hashFile(b, { webCrypto: false }),
          hashwasm: (b) => window.hashWasmKept(b),
        };
        // A warm-up: the kept workers exist before timing.
        for (const f of Object.values(ways)) await f(blobs[0]);
        const ms = { webcrypto: [], wasm: [], hashwasm: [] };
        const digests = new Set();
        for (let rep = 0; rep < reps; rep += 1) {
          for (const [name, f] of Object.entries(ways)) {
            const t = performance.now();
            const out = [];
            for (const b of blobs) out.push(await f(b));
            ms[name].push(performance.now() - t);
            digests.add(out.join());
          }
        }
        return { ms, agree: digests.size === 1 };
      },
      [size, count, 3],
    );
    if (!r.agree) throw new Error(`digests disagree at ${size} bytes`);
    const speed = (name) => mbps(size * count, median(r.ms[name]));
    bySize.push({ size, count, ...Object.fromEntries(["webcrypto", "wasm", "hashwasm"].map((n) => [n, speed(n)])) });
  }
  const label = (n) => (n >= MiB ? `${n / MiB} MiB` : `${n / 1024} KiB`);
  section(
    "1b. Which hasher by file size",
    table(
      [
        "file size",
        "files",
        "WebCrypto MB/s",
        "wasm worker MB/s",
        "hash-wasm worker MB/s",
        "WebCrypto / wasm",
        "wasm / hash-wasm",
      ],
      bySize.map((b) => [
        label(b.size),
        b.count,
        f0(b.webcrypto),
        f0(b.wasm),
        f0(b.hashwasm),
        f2(b.webcrypto / b.wasm),
        f2(b.wasm / b.hashwasm),
      ]),
    ),
    [
      "`hashFile` one file after another: WebCrypto (`subtle.digest` over `blob.arrayBuffer()`, on the page) against `hashFile(b, {webCrypto: false})` (the pooled wasm worker, streaming) and hash-wasm in one kept worker. Medians of 3 passes over in-memory Blobs, every digest compared.",
      `WebCrypto is used up to 64 MiB (above, the file would be held whole in memory, and a file of 64 MiB or more is uploaded in parts, which needs every part's digest from the streaming hasher): ${
        bySize.every((b) => b.webcrypto >= b.wasm)
          ? "it was the faster at every size measured"
          : `it was slower at ${bySize
              .filter((b) => b.webcrypto < b.wasm)
              .map((b) => label(b.size))
              .join(", ")}`
      }.`,
    ],
  );

  // ---------- b. a mixed set ----------
  const seeded = (prefix, i) => `${prefix}-${i}`;
  // Deterministic sizes, spread over the issue's ranges.
  const mixed = [
    ...Array.from({ length: 1000 }, (_, i) =>
      writeFile(`mix-s-${i}.bin`, 4000 + ((i * 7919) % 96_001), seeded("s", i)),
    ),
    ...Array.from({ length: 50 }, (_, i) =>
      writeFile(`mix-m-${i}.bin`, MiB + ((i * 104_729) % (9 * MiB)), seeded("m", i)),
    ),
    ...Array.from({ length: 2 }, (_, i) => writeFile(`mix-l-${i}.bin`, 200 * MiB, seeded("l", i))),
  ];
  const mixedBytes = mixed.reduce((a, f) => a + f.size, 0);
  // locker_core::hash::default_hash_workers of the browser's cores.
  const hashWorkersDefault = await page.evaluate(() =>
    Math.floor(Math.min(4, Math.max(1, (navigator.hardwareConcurrency || 1) - 1))),
  );
  await page.evaluate(() => {
    const input = Object.assign(document.createElement("input"), { type: "file", id: "mixed", multiple: true });
    document.body.append(input);
  });
  await page.setInputFiles(
    "#mixed",
    mixed.map((f) => f.path),
  );
  const mixedRuns = { ours: [], all: [], hashwasm: [] };
  for (let rep = 0; rep < 3; rep += 1) {
    for (const way of ["ours", "all", "hashwasm"]) {
      const r = await page.evaluate(async (way) => {
        const files = [...document.getElementById("mixed").files];
        const t = performance.now();
        const out =
          way === "hashwasm"
            ? await window.inFlight(files, 1, (f) => window.hashWasmKept(f))
            : way === "all"
              ? await Promise.all(files.map((f) => locker.hashFile(f)))
              : await window.inFlight(files, 1, (f) => locker.hashFile(f));
        return { ms: performance.now() - t, out: Object.fromEntries(files.map((f, i) => [f.name, out[i]])) };
      }, way);
      for (const f of mixed) if (r.out[f.name] !== f.sha256) throw new Error(`${way}: wrong digest for ${f.name}`);
      mixedRuns[way].push(r.ms);
    }
  }
  const mixedRatio = median(mixedRuns.ours.map((ms, i) => mixedRuns.hashwasm[i] / ms));
  const mixedRatioAll = median(mixedRuns.all.map((ms, i) => mixedRuns.hashwasm[i] / ms));
  const mixedRow = (name, how, xs) => [
    name,
    how,
    (median(xs) / 1000).toFixed(2),
    f0(mbps(mixedBytes, median(xs))),
    f2(median(xs.map((ms, i) => mixedRuns.hashwasm[i] / ms))),
  ];
  section(
    "1c. A mixed set: 1,000 files of 4-100 KB, 50 of 1-10 MiB, 2 of 200 MiB",
    table(
      ["hasher", "how", "s (median)", "MB/s", "speed vs hash-wasm"],
      [
        mixedRow(
          "locker-web `hashFile`",
          "one file at a time: WebCrypto up to 64 MiB, the wasm worker above",
          mixedRuns.ours,
        ),
        mixedRow(
          "locker-web `hashFile`, every file at once",
          `one call per file at once, taking the module's turns as an Uploader's files do with the defaults: files hashed whole up to 8 MiB 8 side by side, the others in ${hashWorkersDefault} hash worker(s) (the default on this machine's ${cpus().length} cores)`,
          mixedRuns.all,
        ),
        mixedRow("hash-wasm 4.13", "one kept Web Worker, streaming every file, one at a time", mixedRuns.hashwasm),
      ],
    ),
    [
      `${(mixedBytes / 1e6).toFixed(0)} MB in ${mixed.length} files on disk, picked through an <input>; 3 passes, interleaved, every digest checked against node's.`,
      goal(
        mixedRatioAll >= 1.5,
        `mixed set at least 1.5x faster than hash-wasm streaming everything: ${f2(mixedRatioAll)}x with every file given at once (as a drop of the set on the widget is hashed), ${f2(mixedRatio)}x one file after another.`,
      ),
    ],
  );

  // ---------- c. the pool of hash workers ----------
  const POOL_FILES = 8;
  const pool = Array.from({ length: POOL_FILES }, (_, i) => writeFile(`pool-${i}.bin`, 96 * MiB, `pool-${i}`));
  await page.evaluate(() => {
    const input = Object.assign(document.createElement("input"), { type: "file", id: "pool", multiple: true });
    document.body.append(input);
  });
  await page.setInputFiles(
    "#pool",
    pool.map((f) => f.path),
  );
  const cores = cpus().length;
  const widths = [1, 2, 4].filter((w) => w <= Math.max(2, cores));
  const poolRuns = Object.fromEntries(widths.map((w) => [w, []]));
  for (let rep = 0; rep < 3; rep += 1) {
    for (const w of widths) {
      const r = await page.evaluate(async (w) => {
        const files = [...document.getElementById("pool").files];
        const t = performance.now();
        const out = await window.inFlight(files, w, (f) => locker.hashFile(f));
        return { ms: performance.now() - t, out };
      }, w);
      pool.forEach((f, i) => {
        if (r.out[i] !== f.sha256) throw new Error(`pool ${w}: wrong digest for ${f.name}`);
      });
      poolRuns[w].push(r.ms);
    }
  }
  const one = median(poolRuns[1]);
  const speedup = (w) => one / median(poolRuns[w]);
  section(
    "1d. Hash workers in parallel",
    table(
      ["workers", "s (median)", "MB/s", "speed-up vs 1", "efficiency (speed-up / workers)"],
      widths.map((w) => [
        w,
        (median(poolRuns[w]) / 1000).toFixed(2),
        f0(mbps(POOL_FILES * 96 * MiB, median(poolRuns[w]))),
        f2(speedup(w)),
        f2(speedup(w) / w),
      ]),
    ),
    [
      `${POOL_FILES} files of 96 MiB (over the WebCrypto threshold: all hashed by the wasm worker), \`hashFile\` with W files in flight, so W workers from the page's pool. ${cores} cores on this machine, shared with the browser's own threads and whatever else runs; 3 passes, interleaved.`,
      goal(speedup(2) >= 1.6, `2 workers at least 1.6x one worker on this ${cores}-core machine: ${f2(speedup(2))}x.`),
      cores > 4
        ? goal(speedup(4) / 4 >= 0.8, `efficiency on 4 workers at least 0.8: ${f2(speedup(4) / 4)}.`)
        : `Efficiency on 4 workers (goal 0.8) is not measurable here: ${cores} cores.`,
    ],
  );

  // ---------- d. read size ----------
  const READS = [MiB, 4 * MiB, 16 * MiB];
  const readRuns = Object.fromEntries(READS.map((r) => [r, []]));
  for (let rep = 0; rep < 3; rep += 1) {
    for (const chunkSize of READS) {
      const r = await page.evaluate(
        ([n, chunkSize]) => timed(() => locker.hashFile(byName(n), { chunkSize })),
        [h.oneGiB.name, chunkSize],
      );
      if (r.out !== h.oneGiB.sha256) throw new Error(`read size ${chunkSize}: wrong digest`);
      readRuns[chunkSize].push(r.ms);
    }
  }
  section(
    "1e. Read size, hashing 1 GiB in the wasm worker",
    table(
      ["`chunkSize`", "MB/s (median)", "vs 4 MiB"],
      READS.map((r) => [
        label(r),
        f0(mbps(h.oneGiB.size, median(readRuns[r]))),
        f2(median(readRuns[4 * MiB]) / median(readRuns[r])),
      ]),
    ),
    ["3 passes, interleaved; the default stays 4 MiB unless a larger read is clearly faster."],
  );
}
