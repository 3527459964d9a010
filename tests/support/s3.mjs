// The independent S3 server of the direct-to-storage tests (s3s-fs, started by xtask), and the
// CORS layer a browser needs in front of it.
import http from "node:http";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_KEY, api } from "./api.mjs";

export const S3_URL = process.env.LOCKER_S3_URL;
export const S3_BUCKET = process.env.LOCKER_S3_BUCKET;
export const S3_ROOT = process.env.LOCKER_S3_ROOT;

/** Whether s3s-fs holds an object at `key` (its bucket is a folder, its keys are paths). */
export function objectOnDisk(key) {
  return existsSync(join(S3_ROOT, S3_BUCKET, key));
}

/**
 * Registers s3s-fs itself as a bucket (no CORS proxy: for requests from Node, not a browser) and
 * returns the registration; the suite's first file registers it, the others find it (409).
 */
export async function registerS3Bucket() {
  const res = await api("POST", "/v1/buckets", {
    key: ADMIN_KEY,
    json: { name: S3_BUCKET, provider: "s3", endpoint: S3_URL, region: "us-east-1" },
  });
  if (res.status === 201) return res.data;
  if (res.status !== 409) throw new Error(`registering s3s-fs: ${res.status} ${res.text}`);
  const listed = await api("GET", "/v1/buckets", { key: ADMIN_KEY });
  const found = listed.data.buckets.find((b) => b.endpoint === S3_URL && b.name === S3_BUCKET);
  if (!found) throw new Error("s3s-fs is registered (409) but not listed");
  return found;
}

/**
 * A pass-through proxy to s3s-fs that answers CORS preflights and adds CORS headers, standing
 * in for a bucket's CORS rules (R2 and S3 have them; s3s-fs does not). It forwards every
 * request byte for byte, Host header included, so s3s-fs checks the same signature the
 * browser's request carries. `target` is s3s-fs unless given (a test may put the Worker behind
 * another origin the same way). Returns its origin, the requests it forwarded (`seen`:
 * `{method, url, range, checksumMode}` with the request's Range and x-amz-checksum-mode
 * headers, preflights left out), `alter` (unset; a test may set it to a function of the
 * request and the upstream answer's headers that changes those headers, standing in for a
 * server that answers otherwise) and a close function.
 */
export async function corsProxy(target = new URL(S3_URL)) {
  target = new URL(target);
  const seen = [];
  const proxy = { alter: null };
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors = origin
      ? {
          "access-control-allow-origin": origin,
          "access-control-expose-headers": "etag",
          vary: "origin",
        }
      : {};
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        ...cors,
        "access-control-allow-methods": "GET, PUT, HEAD, DELETE",
        "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "",
        "access-control-max-age": "60",
      });
      res.end();
      return;
    }
    seen.push({
      method: req.method,
      url: req.url,
      range: req.headers.range,
      checksumMode: req.headers["x-amz-checksum-mode"],
    });
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        proxy.alter?.(req, answer.headers);
        res.writeHead(answer.statusCode, { ...answer.headers, ...cors });
        answer.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    // A browser that goes away mid-body (a closed page in the resume tests) must not leave the
    // upstream request open: it would keep this process alive after the tests.
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  });
}
