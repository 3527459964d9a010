//! The TypeScript types of the `Uploader`'s options, results, errors and events, emitted into
//! the module's `.d.ts` as they stand here: the JavaScript API the widget and pages rely on.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `new Uploader(...)`. */
export interface UploaderOptions {
  /** The Worker's origin, e.g. "https://files.example.com". */
  endpoint: string;
  /** Namespace the files go to (must be allowed by the token). */
  namespace: string;
  /** An upload token (`lkt_...`) minted by your server. Never an API key. */
  token?: string;
  /** Called when a token is needed or has expired; may return the token or `{token, path_prefix, expires_at}`. */
  getToken?: () => string | TokenAnswer | Promise<string | TokenAnswer>;
  /** Prefix for paths derived from file names (default: the token's `path_prefix`). */
  pathPrefix?: string;
  /** Files transferring at once (1-16, default 3). Hashing, reserving (up to twice this many files ahead) and completing other files overlap these. */
  concurrency?: number;
  /** Files hashing at once, and so hash workers at most (1-8, default min(4, hardwareConcurrency - 1), at least 1). The workers are kept and reused for the next files (those idle for 15 s end); a file of at most 64 MiB sent in one request is hashed by WebCrypto instead, where the page is a secure context, and such a file of at most 8 MiB takes none of these turns (up to 8 hash side by side, page-wide). */
  hashWorkers?: number;
  /** The older name of `hashWorkers` (used when that is not given). */
  hashConcurrency?: number;
  /** Retries of a transient failure (network, stall, 408, 429, 5xx but 501/505) per step (0-20, default 4). */
  retries?: number;
  /** First retry delay in ms, doubled each time, with jitter: the n-th retry waits between half and all of `retryDelay * 2^(n-1)`, at most 15 s (default 500). */
  retryDelay?: number;
  /** Lifetime of each signed upload URL in whole seconds (1-3600, default: the Worker's, an hour). An upload whose URL ran out gets a fresh reservation, up to 3 in all. */
  expiresIn?: number;
  /** Client-side size check in bytes, a convenience only: the Worker decides. */
  maxSize?: number;
  /** Client-side type check, an HTML accept list (".pdf,image/*"), a convenience only. */
  accept?: string;
  /** Bytes read and hashed at a time (64 KiB to 64 MiB, default 4 MiB). */
  chunkSize?: number;
  /** Milliseconds without progress after which reading the file or sending it counts as stalled: the file's byte stream gives way to slices, a transfer is aborted and retried; once a transfer's body is all sent, its answer may take ten times this (100 to 600000, default 30000). */
  stallTimeout?: number;
  /** Files of this many bytes and more are uploaded in parts (default 64 MiB; parts of at least 8 MiB, hashed while the file is hashed). */
  multipartThreshold?: number;
  /** Parts of one file in flight at once (1-16, default 4); each part is retried on its own (`retries`, `retryDelay`). */
  partConcurrency?: number;
  /** Remember uploads in parts in IndexedDB (upload id, the file's name, size, lastModified and digests; never a token or URL), so the same file picked again after a reload sends only the parts not yet stored (default true). */
  resume?: boolean;
  /** Remember each File's SHA-256 in IndexedDB under its fingerprint (name, webkitRelativePath, size, lastModified, type; the newest 10,000), so the same file picked again, after a reload too, is not read to be hashed (default false). A file rewritten in place with its size and lastModified kept then reads as its old bytes: deduplicated to them when the tenant has them; refused otherwise, and then hashed for real. */
  rememberDigests?: boolean;
}

/** What a token route answers (`POST /v1/tokens` gives exactly this). */
export interface TokenAnswer {
  token: string;
  path_prefix?: string;
  /** Unix seconds. */
  expires_at?: number;
}

/** Options of one `upload()` call. */
export interface UploadOptions {
  /** Logical path inside the namespace (default: path prefix + file name made safe). */
  path?: string;
  /** Name for a Blob that is not a File. */
  filename?: string;
  /** Cancels hashing, transfer and the reservation. */
  signal?: AbortSignal;
  /** The id its events carry (default: one made up, `upload-N`). An upload that failed or was cancelled, given its id again, restarts (`state-change` from "failed"/"cancelled" to "waiting"); the id of one still running is refused. */
  id?: string;
}

/** Where an upload is (`state-change`): waiting -> hashing -> reserving -> transferring -> completing -> stored (or completing -> verifying -> stored: a large upload in parts the Worker checks on its own), or reserving -> deduplicated; failed or cancelled from any of the active ones. */
export type UploadState =
  | "waiting" | "hashing" | "reserving" | "transferring" | "completing" | "verifying"
  | "stored" | "deduplicated" | "failed" | "cancelled";

/** The `state-change` event's detail: one per transition, progress included. */
export interface StateChange {
  state: UploadState;
  /** `null` for a file just added. */
  previous: UploadState | null;
  /** Bytes of the current phase: hashed while hashing, sent from the reservation on; never decreasing within a run. */
  loaded: number;
  /** The file's size. */
  total: number;
  /** Retries made of the current phase's step. */
  attempt: number;
  /** Why it failed or was cancelled, or what the current retry is about. */
  error: LockerError | null;
  /** An upload in parts, from its reservation on: parts stored (`done`) of `total`, and how many were found stored when it was resumed after a reload (`resumed`, 0 otherwise). `null` for an upload in one request. */
  parts: { done: number; total: number; resumed: number } | null;
}

/** What `upload()` resolves to. */
export interface UploadResult {
  /** `locker://{namespace}/{path}` */
  ref: string;
  sha256: string;
  size: number;
  /** True when the bytes were already stored and nothing was sent. */
  deduplicated: boolean;
  namespace: string;
  path: string;
  /** The id its events carried. */
  id: string;
}

/** How `upload()` rejects. */
export interface LockerError extends Error {
  name: "LockerError";
  /** "too_large", "type_not_allowed", "aborted", "network", "timeout", "expired", "storage_refused", "bad_answer", "token_failed", "invalid_argument", "hash_failed", or the Worker's error code. */
  code: string;
  /** HTTP status of the refusal, if there was one. */
  status: number | null;
  retryable: boolean;
}

interface FileDetail { file: Blob | File; id: string }
export interface UploaderEventMap {
  "state-change": CustomEvent<FileDetail & StateChange>;
  "hash-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "upload-progress": CustomEvent<FileDetail & { loaded: number; total: number }>;
  "deduplicated": CustomEvent<FileDetail & { ref: string }>;
  "retry": CustomEvent<FileDetail & { step: "reserve" | "transfer" | "complete"; attempt: number; delay: number; error: LockerError }>;
  "complete": CustomEvent<FileDetail & { result: UploadResult }>;
  "error": CustomEvent<FileDetail & { error: LockerError }>;
  "cancel": CustomEvent<FileDetail & { error: LockerError }>;
}
"#;
