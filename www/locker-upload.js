// <locker-upload>: a form-associated upload element built on the locker browser module.
//
//   <form method="post" action="/save">
//     <locker-upload name="attachments" namespace="demo" token-url="/my/token" multiple required>
//     </locker-upload>
//     <button>Save</button>
//   </form>
//   <script type="module" src="https://files.example.com/locker-upload.js"></script>
//
// Each uploaded file adds its ref (`locker://namespace/path`) to the form under `name`.
// Attributes: endpoint (the Worker; default: where this script came from), namespace,
// token-url (POSTed to for an upload token), accept, max-size (bytes), multiple, required,
// disabled, concurrency, stall-timeout (ms), multipart-threshold (bytes), part-concurrency,
// resume ("false" turns it off), remember-digests ("true" or present turns it on: a file picked
// again is not hashed again, see the README). Every attribute may change at any time (frameworks
// set them after creating the element): the next file picked uses the new values, uploads
// already running finish with the old ones. Theme it with the --locker-* custom properties below.

// The browser module (its JS glue and its wasm) is not part of the page's first load: it is
// imported on first use (a file picked, dropped or pasted), or a moment earlier when a person
// shows intent (pointer over or focus in the drop zone, a drag entering it), so the first file
// waits little or nothing for it. A page with a widget nobody uses never downloads the wasm.
let module;
let ready;
/**
 * Loads the wasm module once per page. A page that also uses the module directly calls this
 * instead of the module's own `init()`, so the module is never instantiated twice.
 */
export function loadModule() {
  ready ??= import("./pkg/locker_web.js")
    .then((m) => {
      module = m;
      return m.default();
    })
    .catch((error) => {
      // Not remembered: the next file (or its Retry) asks again.
      ready = undefined;
      throw error;
    });
  return ready;
}

/**
 * Every string the widget shows or announces, in one table. A page translates the widget by
 * replacing it, whole or in part, before files are added:
 * `LockerUpload.strings = { ...LockerUpload.strings, stored: "Gespeichert" }`. Functions get
 * the values their text needs. Labels already on screen change at the next render.
 */
export const STRINGS = Object.freeze({
  chooseFiles: "Choose files",
  chooseFile: "Choose a file",
  dropHint: "or drop or paste them here",
  fileList: "Files",
  progressOf: (name) => `Progress of ${name}`,
  cancel: "Cancel",
  cancelFile: (name) => `Cancel ${name}`,
  retry: "Retry",
  retryFile: (name) => `Retry ${name}`,
  remove: "Remove",
  removeFile: (name) => `Remove ${name}`,
  waiting: "Waiting…",
  hashing: (percent) => `Checking… ${percent}%`,
  uploading: (percent) => `Uploading… ${percent}%`,
  retrying: (attempt) => `Connection trouble, trying again (${attempt})…`,
  resuming: (done, total) => `Resuming (${done} of ${total} parts stored)`,
  verifying: "Verifying… (the server checks a large file on its own; this can take minutes)",
  stored: "Stored",
  deduplicated: "Already stored",
  cancelled: "Cancelled",
  refused: (message) => `Refused: ${message}`,
  unknownError: "unknown error",
  busy: "Wait until the uploads have finished.",
  required: "Upload a file first.",
  announce: (name, status) => `${name}: ${status}`,
});

let strings = STRINGS;

const STYLE = `
:host {
  --_accent: var(--locker-accent, #2563eb);
  --_fg: var(--locker-fg, #1f2937);
  --_muted: var(--locker-muted, #6b7280);
  --_bg: var(--locker-bg, #ffffff);
  --_border: var(--locker-border, #cbd5e1);
  --_error: var(--locker-error, #b91c1c);
  --_success: var(--locker-success, #15803d);
  --_radius: var(--locker-radius, 8px);
  --_focus: var(--locker-focus, #f59e0b);
  display: block;
  font: var(--locker-font, inherit);
  color: var(--_fg);
}
:host([hidden]) { display: none; }
.drop {
  border: 2px dashed var(--_border);
  border-radius: var(--_radius);
  background: var(--_bg);
  padding: 1rem;
  display: flex;
  flex-wrap: wrap;
  gap: .5rem 1rem;
  align-items: center;
}
:host([data-dragging]) .drop { border-color: var(--_accent); }
:host([invalid]) .drop { border-color: var(--_error); }
button {
  font: inherit;
  border-radius: calc(var(--_radius) / 2);
  border: 1px solid var(--_border);
  background: var(--_bg);
  color: var(--_fg);
  padding: .3rem .7rem;
  cursor: pointer;
}
button.pick { background: var(--_accent); border-color: var(--_accent); color: #fff; }
button:focus-visible { outline: 3px solid var(--_focus); outline-offset: 2px; }
button:disabled { opacity: .5; cursor: not-allowed; }
.hint { color: var(--_muted); }
ul { list-style: none; margin: .5rem 0 0; padding: 0; display: grid; gap: .4rem; }
li {
  border: 1px solid var(--_border);
  border-radius: var(--_radius);
  background: var(--_bg);
  padding: .5rem .75rem;
  display: grid;
  grid-template-columns: 1fr auto;
  gap: .25rem .75rem;
  align-items: center;
}
.name { font-weight: 600; overflow-wrap: anywhere; }
.size, .status { color: var(--_muted); font-size: .9em; }
.actions { grid-row: span 2; display: flex; gap: .4rem; }
progress { width: 100%; accent-color: var(--_accent); height: .5rem; }
li[data-state="stored"] .status, li[data-state="deduplicated"] .status { color: var(--_success); }
li[data-state="error"] .status { color: var(--_error); }
.ref { font-family: ui-monospace, monospace; font-size: .85em; overflow-wrap: anywhere; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const DONE = new Set(["stored", "deduplicated"]);
// The Uploader's states (locker-core's upload_state, told by its `state-change` events) as the
// row shows them in `data-state`: the three network steps are one "uploading" to a person.
const SHOWN = {
  waiting: "waiting",
  hashing: "hashing",
  reserving: "uploading",
  transferring: "uploading",
  completing: "uploading",
  verifying: "verifying",
  stored: "stored",
  deduplicated: "deduplicated",
  failed: "error",
  cancelled: "cancelled",
};
// The attributes an Uploader is made from: a change makes the next upload use a new one.
const UPLOADER_ATTRIBUTES = [
  "endpoint",
  "namespace",
  "token-url",
  "accept",
  "max-size",
  "concurrency",
  "stall-timeout",
  "multipart-threshold",
  "part-concurrency",
  "resume",
  "remember-digests",
];
const ACTIVE = new Set(["waiting", "hashing", "uploading", "verifying"]);

let nextRow = 0;

function formatSize(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

export class LockerUpload extends HTMLElement {
  static formAssociated = true;
  static observedAttributes = ["multiple", "disabled", "required", "name", ...UPLOADER_ATTRIBUTES];

  /** The widget's strings ({@link STRINGS}); assign a table of (some of) the same keys to translate it. */
  static get strings() {
    return strings;
  }
  static set strings(table) {
    strings = Object.freeze({ ...STRINGS, ...table });
  }

  #internals = this.attachInternals();
  #rows = [];
  #uploader = null;
  // Disabled by an ancestor (a disabled <fieldset>), kept apart from the author's own
  // `disabled` attribute so that neither overwrites the other.
  #formDisabled = false;
  #input;
  #pick;
  #list;
  #live;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    this.#input = el("input", { type: "file", hidden: true, tabIndex: -1 });
    this.#pick = el("button", { type: "button", className: "pick", textContent: strings.chooseFiles });
    this.#pick.setAttribute("part", "button");
    this.#list = el("ul", { className: "files" });
    this.#list.setAttribute("part", "list");
    this.#list.setAttribute("aria-label", strings.fileList);
    this.#live = el("div", { className: "sr" });
    this.#live.setAttribute("role", "status");
    this.#live.setAttribute("aria-live", "polite");
    const drop = el("div", { className: "drop" }, [
      this.#pick,
      el("span", { className: "hint", textContent: strings.dropHint }),
      this.#input,
    ]);
    drop.setAttribute("part", "dropzone");
    // Intent to use the widget starts the module's download; a failure here is seen, and
    // reported on a row, when a file is added.
    const warm = () => loadModule().catch(() => {});
    for (const type of ["pointerenter", "focusin", "dragenter"]) this.addEventListener(type, warm, { once: true });
    root.append(el("style", { textContent: STYLE }), drop, this.#list, this.#live);

    this.#pick.addEventListener("click", () => this.#input.click());
    this.#input.addEventListener("change", () => {
      this.addFiles([...this.#input.files]);
      this.#input.value = "";
    });
    this.addEventListener("dragover", (e) => {
      if (this.#disabled || !e.dataTransfer?.types.includes("Files")) return;
      e.preventDefault();
      this.toggleAttribute("data-dragging", true);
    });
    this.addEventListener("dragleave", () => this.removeAttribute("data-dragging"));
    this.addEventListener("drop", (e) => {
      this.removeAttribute("data-dragging");
      if (this.#disabled || !e.dataTransfer?.files.length) return;
      e.preventDefault();
      this.addFiles([...e.dataTransfer.files]);
    });
    this.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (this.#disabled || files.length === 0) return;
      e.preventDefault();
      this.addFiles(files);
    });
  }

  connectedCallback() {
    this.#syncAttributes();
    this.#syncForm();
  }

  attributeChangedCallback(name, old, value) {
    // Uploads running hold their own Uploader: they finish with the values they started with.
    if (old !== value && UPLOADER_ATTRIBUTES.includes(name)) this.#uploader = null;
    this.#syncAttributes();
    this.#syncForm();
  }

  // ---- form association ----
  get form() {
    return this.#internals.form;
  }
  get name() {
    return this.getAttribute("name");
  }
  get type() {
    return "locker-upload";
  }
  get validity() {
    return this.#internals.validity;
  }
  get validationMessage() {
    return this.#internals.validationMessage;
  }
  get willValidate() {
    return this.#internals.willValidate;
  }
  checkValidity() {
    return this.#internals.checkValidity();
  }
  reportValidity() {
    return this.#internals.reportValidity();
  }

  /** The refs of the files stored so far, in the order they were added. */
  get value() {
    return this.#finished().map((r) => r.result.ref);
  }

  /** Every finished upload's result (`{ref, sha256, size, deduplicated, ...}`). */
  get results() {
    return this.#finished().map((r) => ({ ...r.result }));
  }

  // Stored rows whose upload() has resolved: the state comes a moment before the result.
  #finished() {
    return this.#rows.filter((r) => DONE.has(r.state) && r.result);
  }

  formResetCallback() {
    for (const row of [...this.#rows]) this.#remove(row);
  }

  formDisabledCallback(disabled) {
    this.#formDisabled = disabled;
    this.#syncAttributes();
  }

  /** Reflects the `disabled` attribute (the author's; a disabled fieldset does not change it). */
  get disabled() {
    return this.hasAttribute("disabled");
  }
  set disabled(value) {
    this.toggleAttribute("disabled", Boolean(value));
  }

  get #disabled() {
    return this.hasAttribute("disabled") || this.#formDisabled;
  }

  #syncAttributes() {
    this.#input.accept = this.getAttribute("accept") ?? "";
    this.#input.multiple = this.hasAttribute("multiple");
    this.#pick.textContent = this.hasAttribute("multiple") ? strings.chooseFiles : strings.chooseFile;
    this.#pick.disabled = this.#disabled;
  }

  #syncForm() {
    const refs = this.value;
    const name = this.name;
    if (name && refs.length > 0) {
      const data = new FormData();
      for (const ref of refs) data.append(name, ref);
      this.#internals.setFormValue(data);
    } else {
      this.#internals.setFormValue(null);
    }
    const busy = this.#rows.some((r) => ACTIVE.has(r.state));
    if (busy) {
      this.#internals.setValidity({ customError: true }, strings.busy, this.#pick);
    } else if (this.hasAttribute("required") && refs.length === 0) {
      this.#internals.setValidity({ valueMissing: true }, strings.required, this.#pick);
    } else {
      this.#internals.setValidity({});
    }
  }

  // ---- uploading ----
  async #getUploader() {
    await loadModule();
    if (this.#uploader) return this.#uploader;
    const tokenUrl = this.getAttribute("token-url");
    if (!tokenUrl) throw new Error("<locker-upload> needs a token-url attribute");
    const endpoint = this.getAttribute("endpoint") ?? new URL(".", import.meta.url).origin;
    const maxSize = this.getAttribute("max-size");
    const uploader = new module.Uploader({
      endpoint,
      namespace: this.getAttribute("namespace") ?? "default",
      getToken: async () => {
        const res = await fetch(tokenUrl, { method: "POST", credentials: "same-origin" });
        if (!res.ok) throw new Error(`the token route answered HTTP ${res.status}`);
        return res.json();
      },
      accept: this.getAttribute("accept") ?? undefined,
      maxSize: maxSize === null ? undefined : Number(maxSize),
      concurrency: Number(this.getAttribute("concurrency") ?? 3),
      stallTimeout: this.hasAttribute("stall-timeout") ? Number(this.getAttribute("stall-timeout")) : undefined,
      multipartThreshold: this.#numberAttribute("multipart-threshold"),
      partConcurrency: this.#numberAttribute("part-concurrency"),
      resume: this.getAttribute("resume") !== "false",
      rememberDigests: this.hasAttribute("remember-digests") && this.getAttribute("remember-digests") !== "false",
    });
    // The rows show what the Uploader says, nothing else: one event per transition.
    uploader.addEventListener("state-change", (e) => {
      const row = this.#rows.find((r) => r.id === e.detail.id);
      if (row) this.#render(row, e.detail);
    });
    this.#uploader = uploader;
    return uploader;
  }

  #numberAttribute(name) {
    return this.hasAttribute(name) ? Number(this.getAttribute(name)) : undefined;
  }

  /** Adds files and starts uploading them. Without `multiple`, replaces what was there. */
  addFiles(files) {
    if (this.#disabled || files.length === 0) return;
    if (!this.hasAttribute("multiple")) {
      for (const row of [...this.#rows]) this.#remove(row);
      files = files.slice(0, 1);
    }
    for (const file of files) {
      const row = this.#makeRow(file);
      this.#rows.push(row);
      this.#list.append(row.li);
      this.#start(row);
    }
  }

  #makeRow(file) {
    // The id the Uploader tracks the file by, the same for every retry of it.
    nextRow += 1;
    const row = { id: `locker-upload-${nextRow}`, file, state: null, result: null, controller: null };
    row.status = el("span", { className: "status" });
    row.progress = el("progress", { max: 1, value: 0 });
    row.progress.setAttribute("aria-label", strings.progressOf(file.name));
    row.ref = el("span", { className: "ref" });
    row.cancel = el("button", { type: "button", textContent: strings.cancel });
    row.cancel.setAttribute("aria-label", strings.cancelFile(file.name));
    row.retry = el("button", { type: "button", textContent: strings.retry, hidden: true });
    row.retry.setAttribute("aria-label", strings.retryFile(file.name));
    row.removeButton = el("button", { type: "button", textContent: strings.remove, hidden: true });
    row.removeButton.setAttribute("aria-label", strings.removeFile(file.name));
    row.cancel.addEventListener("click", () => row.controller?.abort());
    row.retry.addEventListener("click", () => this.#start(row));
    row.removeButton.addEventListener("click", () => this.#remove(row, true));
    row.li = el("li", {}, [
      el("span", { className: "name", textContent: file.name }),
      el("span", { className: "actions" }, [row.cancel, row.retry, row.removeButton]),
      el("span", { className: "size", textContent: formatSize(file.size) }),
      row.progress,
      row.status,
      row.ref,
    ]);
    row.li.setAttribute("part", "file");
    // Until the module is loaded and the Uploader tells it otherwise.
    this.#render(row, { state: "waiting" });
    return row;
  }

  /** Shows a `state-change` of the row's upload (or the same shape when no Uploader could be made). */
  #render(row, { state, loaded = 0, total = 0, attempt = 0, error = null, parts = null }) {
    const shown = SHOWN[state] ?? "error";
    const changed = row.state !== shown;
    // A button that disappears under the keyboard focus would drop focus to the page.
    if (!ACTIVE.has(shown)) this.#moveFocus(row, DONE.has(shown) ? row.removeButton : row.retry);
    row.state = shown;
    row.li.dataset.state = shown;
    const active = ACTIVE.has(shown);
    row.cancel.hidden = !active;
    row.retry.hidden = !(shown === "error" || shown === "cancelled");
    row.removeButton.hidden = active;
    row.progress.hidden = !active;
    row.progress.max = total || 1;
    row.progress.value = loaded;
    const pct = Math.floor((100 * loaded) / (total || 1));
    const text = {
      waiting: strings.waiting,
      hashing: strings.hashing(pct),
      uploading:
        attempt > 0
          ? strings.retrying(attempt)
          : parts?.resumed > 0
            ? strings.resuming(parts.done, parts.total)
            : strings.uploading(pct),
      verifying: strings.verifying,
      stored: strings.stored,
      deduplicated: strings.deduplicated,
      cancelled: strings.cancelled,
      error: strings.refused(error?.message ?? strings.unknownError),
    }[shown];
    row.status.textContent = text;
    if (changed && !active) this.#announce(strings.announce(row.file.name, text));
    if (changed) this.#syncForm();
  }

  async #start(row) {
    const hadFocus = this.shadowRoot.activeElement;
    row.controller = new AbortController();
    row.result = null;
    row.ref.textContent = "";
    try {
      const uploader = await this.#getUploader();
      const upload = uploader.upload(row.file, { signal: row.controller.signal, id: row.id });
      if (hadFocus === row.retry) row.cancel.focus();
      const result = await upload;
      row.result = result;
      row.ref.textContent = result.ref;
      this.#syncForm();
      this.dispatchEvent(new CustomEvent("locker-complete", { detail: { ...result }, bubbles: true }));
      this.dispatchEvent(new Event("change", { bubbles: true }));
    } catch (error) {
      // The Uploader has told the row already; an element it could not be made for has not.
      if (ACTIVE.has(row.state))
        this.#render(row, { state: error?.code === "aborted" ? "cancelled" : "failed", error });
      if (error?.code !== "aborted") {
        this.dispatchEvent(new CustomEvent("locker-error", { detail: { file: row.file, error }, bubbles: true }));
      }
    }
  }

  /** Keeps keyboard focus on the row when the button that had it is about to hide. */
  #moveFocus(row, to) {
    if (this.shadowRoot.activeElement === row.cancel) {
      to.hidden = false;
      to.focus();
    }
  }

  #remove(row, keepFocus = false) {
    row.controller?.abort();
    const i = this.#rows.indexOf(row);
    if (i >= 0) this.#rows.splice(i, 1);
    row.li.remove();
    if (keepFocus) this.#pick.focus();
    this.#syncForm();
    this.dispatchEvent(new Event("change", { bubbles: true }));
  }

  #announce(text) {
    this.#live.textContent = text;
  }
}

if (!customElements.get("locker-upload")) {
  customElements.define("locker-upload", LockerUpload);
}
