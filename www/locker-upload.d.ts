// Types of www/locker-upload.js: the `<locker-upload>` element and `loadModule`.
//
// The Worker serves this file beside the script. TypeScript uses it for an import of
// "./locker-upload.js" when both sit side by side (a vendored copy), or include it in a project
// with `/// <reference path="locker-upload.d.ts" />`. Importing the script (even
// `import "./locker-upload.js"`) defines the element; these types then type
// `document.querySelector("locker-upload")`, `document.createElement("locker-upload")` and the
// element's events.
//
// The result and error types repeat those of the browser module (pkg/locker_web.d.ts:
// `UploadResult`, `LockerError`) so that this file stands alone.

/** A finished upload: the `locker-complete` event's `detail`, one entry of `results`. */
export interface LockerUploadResult {
  /** `locker://{namespace}/{path}`: what the form submits under the element's `name`. */
  ref: string;
  /** SHA-256 of the stored bytes, 64 lowercase hex digits. */
  sha256: string;
  /** Bytes. */
  size: number;
  /** True when the bytes were already stored and nothing was sent. */
  deduplicated: boolean;
  namespace: string;
  path: string;
  /** The id the browser module tracked the upload by (its `state-change` events'). */
  id: string;
}

/** Why an upload failed, as the browser module reports it. */
export interface LockerError extends Error {
  name: "LockerError";
  /** "too_large", "type_not_allowed", "network", or the Worker's error code. */
  code: string;
  /** HTTP status of the refusal, if there was one. */
  status: number | null;
  retryable: boolean;
}

/** The `locker-error` event's `detail`. */
export interface LockerUploadErrorDetail {
  file: File;
  /** A `LockerError`, or a plain `Error` when the element itself is misconfigured (no `token-url`). */
  error: LockerError | Error;
}

/** The element's events, with the ones it adds. All bubble. */
export interface LockerUploadEventMap extends HTMLElementEventMap {
  /** A file was stored (or was already stored: `detail.deduplicated`). */
  "locker-complete": CustomEvent<LockerUploadResult>;
  /** A file was refused or failed; a cancelled file fires nothing. */
  "locker-error": CustomEvent<LockerUploadErrorDetail>;
  /** `value` changed: a file was stored or removed. */
  change: Event;
}

/**
 * `<locker-upload>`: a form-associated element that hashes files in the browser and uploads
 * those not already stored. It is configured by attributes (see {@link LockerUploadAttributes});
 * of those only `name` is also a (read-only) property.
 */
export declare class LockerUpload extends HTMLElement {
  static readonly formAssociated: true;
  static readonly observedAttributes: string[];

  /** The refs of the files stored so far, in the order they were added. */
  readonly value: string[];
  /** Every finished upload's result, in the same order as `value`. */
  readonly results: LockerUploadResult[];

  /** Adds files and starts uploading them. Without `multiple`, replaces what was there. */
  addFiles(files: File[]): void;

  /** Every string the widget shows; assign a table of (some of) its keys to translate it. */
  static get strings(): Readonly<LockerUploadStrings>;
  static set strings(table: Partial<LockerUploadStrings>);

  readonly form: HTMLFormElement | null;
  /** The `name` attribute: the form field the refs are submitted under. */
  readonly name: string | null;
  readonly type: "locker-upload";
  readonly validity: ValidityState;
  readonly validationMessage: string;
  readonly willValidate: boolean;
  checkValidity(): boolean;
  reportValidity(): boolean;

  addEventListener<K extends keyof LockerUploadEventMap>(
    type: K,
    listener: (this: LockerUpload, event: LockerUploadEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof LockerUploadEventMap>(
    type: K,
    listener: (this: LockerUpload, event: LockerUploadEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The widget's user-facing strings (`LockerUpload.strings`, `STRINGS`). */
export interface LockerUploadStrings {
  chooseFiles: string;
  chooseFile: string;
  dropHint: string;
  fileList: string;
  progressOf: (name: string) => string;
  cancel: string;
  cancelFile: (name: string) => string;
  retry: string;
  retryFile: (name: string) => string;
  remove: string;
  removeFile: (name: string) => string;
  waiting: string;
  hashing: (percent: number) => string;
  uploading: (percent: number) => string;
  retrying: (attempt: number) => string;
  /** An upload in parts resumed after a reload: `done` of `total` parts stored so far. */
  resuming: (done: number, total: number) => string;
  /** A large upload in parts the server checks on its own before it is stored. */
  verifying: string;
  stored: string;
  deduplicated: string;
  cancelled: string;
  refused: (message: string) => string;
  unknownError: string;
  busy: string;
  required: string;
  announce: (name: string, status: string) => string;
}

/** The English strings, the default of `LockerUpload.strings`. */
export declare const STRINGS: Readonly<LockerUploadStrings>;

/**
 * Loads the browser module (wasm) once per page. A page that also uses the module directly
 * awaits this instead of the module's own `init()`, so the module is never instantiated twice.
 */
export declare function loadModule(): Promise<unknown>;

/** The element's attributes (README, "Embedding the upload widget"). */
export interface LockerUploadAttributes {
  /** The Worker's origin (default: the origin the script came from). */
  endpoint?: string;
  /** Where files go (default `default`). */
  namespace?: string;
  /** Your backend route that answers an upload token (POSTed to with the page's cookies). */
  "token-url"?: string;
  /** Checked in the browser before hashing, a convenience: the token's limits are what count. */
  accept?: string;
  /** Bytes; checked in the browser before hashing, a convenience like `accept`. */
  "max-size"?: number | string;
  multiple?: boolean;
  required?: boolean;
  disabled?: boolean;
  name?: string;
  /** Files uploading at once (default 3). */
  concurrency?: number | string;
  /** Milliseconds without progress before a transfer is aborted and retried (default 30000). */
  "stall-timeout"?: number | string;
  /** Bytes from which a file is uploaded in parts (default 67108864, 64 MiB). */
  "multipart-threshold"?: number | string;
  /** Parts of one file in flight at once (default 4). */
  "part-concurrency"?: number | string;
  /** `"false"` turns off resuming uploads in parts after a reload (default on). */
  resume?: "true" | "false" | boolean;
  /** Present (or `"true"`) remembers each file's digest, so the same file picked again, after a reload too, is not hashed again (default off; `"false"` is off too). */
  "remember-digests"?: "true" | "false" | boolean;
}

/** What JSX may pass to `<locker-upload>`: its attributes and the usual HTML ones. */
export interface LockerUploadJSXProps extends LockerUploadAttributes {
  id?: string;
  class?: string;
  className?: string;
  style?: string | Record<string, string | number>;
  hidden?: boolean;
  slot?: string;
  children?: unknown;
  key?: string | number;
  ref?: unknown;
  [data: `data-${string}`]: string | number | boolean | undefined;
  [aria: `aria-${string}`]: string | number | boolean | undefined;
}

declare global {
  interface HTMLElementTagNameMap {
    "locker-upload": LockerUpload;
  }

  // JSX with the global namespace (React 18's types, Preact in compat mode, `jsx: "preserve"`).
  // React 19's types read `React.JSX` instead; there, add:
  //   declare module "react" {
  //     namespace JSX { interface IntrinsicElements { "locker-upload": LockerUploadJSXProps } }
  //   }
  namespace JSX {
    interface IntrinsicElements {
      "locker-upload": LockerUploadJSXProps;
    }
  }
}
