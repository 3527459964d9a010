//! Hashing in a dedicated Web Worker, so a large file never blocks the page.
//!
//! The page starts a module worker from a tiny script (a Blob URL) that imports this same
//! module, receives the page's compiled `WebAssembly.Module` (no second download or compile),
//! and calls [`hash_worker_main`]. The protocol, all plain objects:
//! page -> worker: the Module, then one `{blob, chunkSize, stallTimeout, partSize}` per job;
//! worker -> page: `{type: "ready"}`, `{type: "progress", bytes}`, then
//! `{type: "done", sha256, parts}` (`parts`: the digest of each part of `partSize` bytes, empty
//! without one) or `{type: "error", code, message}`.
//! A worker that finished a job is kept for the next one (a pool, page-wide): starting a module
//! worker and instantiating the module in it costs more than hashing a small file. Idle workers
//! are terminated after [`IDLE_MS`]. Cancelling terminates the worker: nothing outlives it.
//!
//! A small file (up to `locker_core::hash::WHOLE_DIGEST_MAX` bytes, not in parts) in a secure context is not sent
//! to a worker at all: it is read whole and hashed by WebCrypto's `subtle.digest`, which runs
//! native code (SHA-NI where the CPU has it) off the page's thread; see the bench's hash section
//! for the measurements behind the threshold.

use std::cell::RefCell;

use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use locker_core::hash::{hash_queue, hasher_for, to_hex, HashQueue, Hasher};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    AbortSignal, Blob, BlobPropertyBag, DedicatedWorkerGlobalScope, MessageEvent, Url, Worker,
    WorkerOptions, WorkerType,
};

use crate::digest::{hash_blob_parts, on_progress, Reading};
use crate::error::{code, LockerError};
use crate::js::{deferred, get, get_number, obj, on_abort, set_timeout, wait, Finish};
use crate::slots::Slots;

#[wasm_bindgen]
extern "C" {
    type ImportMeta;
    #[wasm_bindgen(thread_local_v2, js_namespace = import, js_name = meta)]
    static IMPORT_META: ImportMeta;
    #[wasm_bindgen(method, getter)]
    fn url(this: &ImportMeta) -> String;
}

/// The worker's entry point. Not for direct use: the worker script calls it.
#[wasm_bindgen(js_name = hashWorkerMain)]
pub fn hash_worker_main() -> Result<(), JsValue> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().dyn_into()?;
    let reply = scope.clone();
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let scope = reply.clone();
        spawn_local(async move {
            let answer = match job(&scope, &event.data()).await {
                Ok((sha256, parts)) => {
                    let parts: js_sys::Array = parts.into_iter().map(JsValue::from).collect();
                    obj(&[
                        ("type", "done".into()),
                        ("sha256", sha256.into()),
                        ("parts", parts.into()),
                    ])
                }
                Err(e) => obj(&[
                    ("type", "error".into()),
                    ("code", e.code.into()),
                    ("message", e.message.into()),
                ]),
            };
            // The page is gone if this fails; there is nobody left to tell.
            let _ = scope.post_message(&answer);
        });
    });
    scope.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    // The handler lives as long as the worker does.
    onmessage.forget();
    scope.post_message(&obj(&[("type", "ready".into())]))
}

async fn job(
    scope: &DedicatedWorkerGlobalScope,
    data: &JsValue,
) -> Result<(String, Vec<String>), LockerError> {
    let blob: Blob = get(data, "blob")
        .dyn_into()
        .map_err(|_| LockerError::invalid("the hash worker needs a Blob"))?;
    // Whole bytes: the planner's part size.
    let part_size = get(data, "partSize").as_f64().map(|p| p as u64);
    hash_blob_parts(&blob, Reading::parse(data)?, part_size, |bytes| {
        let _ = scope.post_message(&obj(&[
            ("type", "progress".into()),
            ("bytes", bytes.into()),
        ]));
    })
    .await
}

fn worker_script() -> Result<String, LockerError> {
    let module_url = IMPORT_META.with(ImportMeta::url);
    // A JSON string is a JavaScript string literal.
    let quoted = js_sys::JSON::stringify(&module_url.into())
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| LockerError::new(code::HASH_FAILED, "the module URL is not a string"))?;
    Ok(format!(
        "import init, {{ hashWorkerMain }} from {quoted};\n\
         self.onmessage = async (e) => {{\n  \
           self.onmessage = null;\n  \
           await init({{ module_or_path: e.data }});\n  \
           hashWorkerMain();\n\
         }};\n"
    ))
}

fn start_worker() -> Result<(Worker, String), LockerError> {
    let fail = |e: JsValue| LockerError::from_js("could not start the hash worker", e);
    let parts = Array::of1(&worker_script()?.into());
    let bag = BlobPropertyBag::new();
    bag.set_type("text/javascript");
    let script = Blob::new_with_str_sequence_and_options(&parts, &bag).map_err(fail)?;
    let url = Url::create_object_url_with_blob(&script).map_err(fail)?;
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    options.set_name("locker-hash");
    let worker = Worker::new_with_options(&url, &options).map_err(fail)?;
    Ok((worker, url))
}

/// A hash worker and its script's URL, undone when dropped (an idle worker is kept in [`IDLE`]
/// instead, and dropped from there).
struct Running {
    worker: Worker,
    url: String,
    /// Whether it has said `ready`: a fresh worker is sent its job once it has, one from the
    /// pool at once.
    ready: bool,
    /// When it was parked in the pool (ms since the epoch).
    parked_at: f64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.worker.terminate();
        let _ = Url::revoke_object_url(&self.url);
    }
}

/// How long a worker may sit idle in the pool before it is terminated: long enough to serve
/// the next file of a batch the user picks, short enough that a page that is done hashing
/// gives the workers' memory back.
const IDLE_MS: f64 = 15_000.0;
/// At most this many idle workers are kept (the largest `hashWorkers`).
const MAX_IDLE: usize = 8;

thread_local! {
    /// Workers that finished a job, newest last.
    static IDLE: RefCell<Vec<Running>> = const { RefCell::new(Vec::new()) };
    /// Terminates the workers idle for [`IDLE_MS`]; one closure for the page, scheduled anew
    /// each time a worker is parked.
    static SWEEP: Closure<dyn FnMut()> = Closure::new(sweep_idle);
}

fn sweep_idle() {
    let now = js_sys::Date::now();
    // Dropped outside the borrow: terminating runs no code of ours, but stays simple to reason on.
    let stale: Vec<Running> = IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let (stale, keep) = idle
            .drain(..)
            .partition(|r| now - r.parked_at >= IDLE_MS - 1.0);
        *idle = keep;
        stale
    });
    drop(stale);
}

/// A worker for one job: an idle one from the pool, or a new one.
fn lease_worker() -> Result<Running, LockerError> {
    if let Some(running) = IDLE.with(|idle| idle.borrow_mut().pop()) {
        return Ok(running);
    }
    let (worker, url) = start_worker()?;
    Ok(Running {
        worker,
        url,
        ready: false,
        parked_at: 0.0,
    })
}

/// Parks a worker whose job ended normally, for the next job. Its handlers are cleared first:
/// the closures they pointed to are dropped with the job.
fn park(mut running: Running) {
    running.worker.set_onmessage(None);
    running.worker.set_onerror(None);
    running.ready = true;
    running.parked_at = js_sys::Date::now();
    let extra = IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        idle.push(running);
        (idle.len() > MAX_IDLE).then(|| idle.remove(0))
    });
    drop(extra);
    SWEEP.with(|sweep| set_timeout(sweep.as_ref().unchecked_ref(), IDLE_MS));
}

/// The page's side of the protocol: sends the job once the worker is ready, reports its
/// progress, and settles `finish` with the digest or the worker's error.
fn on_message(
    worker: Worker,
    job: JsValue,
    finish: Finish,
    progress: impl Fn(f64) + 'static,
) -> Closure<dyn FnMut(MessageEvent)> {
    Closure::new(move |event: MessageEvent| {
        let data = event.data();
        match get(&data, "type").as_string().as_deref() {
            Some("ready") => {
                if let Err(e) = worker.post_message(&job) {
                    finish.call(Err(LockerError::from_js("could not send the file", e)));
                }
            }
            Some("progress") => progress(get(&data, "bytes").as_f64().unwrap_or(0.0)),
            Some("done") => finish.call(Ok(data)),
            _ => finish.call(Err(LockerError::new(
                &get(&data, "code")
                    .as_string()
                    .unwrap_or_else(|| code::HASH_FAILED.into()),
                get(&data, "message")
                    .as_string()
                    .unwrap_or_else(|| "hashing failed".into()),
            ))),
        }
    })
}

/// A worker that failed outside the protocol (its script did not load, or it threw).
fn on_error(finish: Finish) -> Closure<dyn FnMut(JsValue)> {
    Closure::new(move |event: JsValue| {
        let detail = get(&event, "message").as_string().unwrap_or_else(|| {
            "the worker script did not load (check the page's CSP worker-src)".into()
        });
        finish.call(Err(LockerError::new(
            code::HASH_FAILED,
            format!("the hash worker failed: {detail}"),
        )));
    })
}

/// Hashes `blob` in a Web Worker from the pool (or a new one), and with a `part_size` each part
/// of it too (see [`hash_blob_parts`]). `progress(bytes_hashed)` runs on the page.
async fn hash_in_worker(
    blob: &Blob,
    reading: Reading,
    part_size: Option<u64>,
    signal: Option<&AbortSignal>,
    progress: impl Fn(f64) + 'static,
) -> Result<(String, Vec<String>), LockerError> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(LockerError::aborted());
    }
    let running = lease_worker()?;
    let (done, finish) = deferred();

    let job = obj(&reading.props());
    let _ = js_sys::Reflect::set(&job, &"blob".into(), blob);
    if let Some(p) = part_size {
        // Part sizes are whole MiB far below 2^53: exact as a number.
        let _ = js_sys::Reflect::set(&job, &"partSize".into(), &(p as f64).into());
    }
    let on_message = on_message(
        running.worker.clone(),
        job.clone(),
        finish.clone(),
        progress,
    );
    let on_error = on_error(finish.clone());
    running
        .worker
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    running
        .worker
        .set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let _abort = signal.map(|s| on_abort(s, move || finish.call(Err(LockerError::aborted()))));
    if running.ready {
        running
            .worker
            .post_message(&job)
            .map_err(|e| LockerError::from_js("could not send the file", e))?;
    } else {
        running
            .worker
            .post_message(&wasm_bindgen::module())
            .map_err(|e| LockerError::from_js("could not start the hash worker", e))?;
    }

    // Cancelled or failed: the worker is dropped (terminated), whatever it was doing.
    let done = wait(done).await?;
    park(running);
    let sha256 = get(&done, "sha256")
        .as_string()
        .ok_or_else(|| LockerError::new(code::HASH_FAILED, "the worker sent no digest"))?;
    let parts = get(&done, "parts")
        .dyn_into::<js_sys::Array>()
        .map(|a| a.iter().filter_map(|p| p.as_string()).collect())
        .unwrap_or_default();
    Ok((sha256, parts))
}

/// `crypto.subtle` if this is a secure context that has it (an `http:` page on another host
/// than localhost has neither).
pub(crate) fn subtle() -> Option<JsValue> {
    let global = js_sys::global();
    if get(&global, "isSecureContext").as_bool() != Some(true) {
        return None;
    }
    let subtle = get(&get(&global, "crypto"), "subtle");
    subtle.is_object().then_some(subtle)
}

/// SHA-256 of `blob`, read whole, by WebCrypto. Off the page's thread (the browser runs the
/// digest natively, in the background), and cancellable: a signal that fires settles at once.
async fn hash_webcrypto(
    subtle: JsValue,
    blob: &Blob,
    signal: Option<&AbortSignal>,
    progress: impl Fn(f64),
) -> Result<String, LockerError> {
    let fail = |e: JsValue| LockerError::from_js("WebCrypto could not hash the file", e);
    let digest: Function = get(&subtle, "digest").dyn_into().map_err(fail)?;
    let size = blob.size();
    let read = blob.array_buffer();
    let (done, finish) = deferred();
    let settle = finish.clone();
    spawn_local(async move {
        let outcome = async {
            let bytes = JsFuture::from(read)
                .await
                .map_err(|e| LockerError::from_js("could not read the file", e))?;
            if get(&bytes, "byteLength").as_f64() != Some(size) {
                return Err(LockerError::new(
                    "file_changed",
                    "the file changed while it was being read",
                ));
            }
            let hashing: Promise = digest
                .call2(&subtle, &"SHA-256".into(), &bytes)
                .and_then(JsCast::dyn_into)
                .map_err(fail)?;
            JsFuture::from(hashing).await.map_err(fail)
        };
        settle.call(outcome.await);
    });
    // A digest under way cannot be stopped; a cancelled one finishes unseen, its result dropped.
    let _abort = signal.map(|s| on_abort(s, move || finish.call(Err(LockerError::aborted()))));
    let digest = wait(done).await?;
    progress(size);
    Ok(to_hex(&Uint8Array::new(&digest).to_vec()))
}

thread_local! {
    /// Turns of the small files hashed whole, page-wide (`locker_core::hash::hash_queue`).
    static SMALL_WHOLE: Rc<Slots> = Slots::new(locker_core::hash::SMALL_WHOLE_AT_ONCE);
    /// `hashFile`'s hash-worker turns, page-wide: the default `hashWorkers` (an Uploader has
    /// turns of its own), so that files hashed all at once do not start a worker each.
    static FILE_WORKERS: Rc<Slots> = Slots::new(default_hash_workers() as usize);
}

/// Hash workers by default (`locker_core::hash::default_hash_workers`), from the browser's
/// `hardwareConcurrency`.
pub(crate) fn default_hash_workers() -> u32 {
    let cores = get_number(&get(&js_sys::global(), "navigator"), "hardwareConcurrency");
    locker_core::hash::default_hash_workers(cores)
}

/// The best hasher for `blob` (`locker_core::hash::hasher_for`), in its turn
/// (`locker_core::hash::hash_queue`): WebCrypto for a small file hashed whole (no
/// `part_size`) in a secure context when `web_crypto` allows, a pooled Web Worker streaming
/// it through the wasm SHA-256 otherwise (with each part's digest for an upload in parts, from
/// the same read). A file hashed whole of at most `SMALL_WHOLE_MAX` waits for one of the
/// page-wide turns of small files, any other for one of `workers`; `started` is called when
/// its turn comes.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn hash_best(
    blob: &Blob,
    reading: Reading,
    part_size: Option<u64>,
    web_crypto: bool,
    workers: &Rc<Slots>,
    signal: Option<&AbortSignal>,
    started: impl FnOnce(),
    progress: impl Fn(f64) + 'static,
) -> Result<(String, Vec<String>), LockerError> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(LockerError::aborted());
    }
    let subtle = subtle().filter(|_| web_crypto);
    // A Blob's size is a whole number of bytes.
    let size = blob.size() as u64;
    let hasher = hasher_for(size, part_size.is_some(), subtle.is_some());
    let turns = match hash_queue(hasher, size) {
        HashQueue::SmallWhole => SMALL_WHOLE.with(Rc::clone),
        HashQueue::Workers => workers.clone(),
    };
    let _turn = turns.acquire(signal).await?;
    started();
    if let (Hasher::Whole, Some(subtle)) = (hasher, subtle) {
        let digest = hash_webcrypto(subtle, blob, signal, progress).await?;
        return Ok((digest, Vec::new()));
    }
    hash_in_worker(blob, reading, part_size, signal, progress).await
}

/// `hashFile(blob, {chunkSize, stallTimeout, onProgress, signal, webCrypto})`: SHA-256 of a
/// File or Blob. Up to 64 MiB in a secure context, WebCrypto's `subtle.digest` over the whole
/// file (unless `webCrypto: false`); otherwise in a Web Worker (one kept from an earlier hash if
/// there is one), read as a stream into reused buffers (constant memory). Many calls at once
/// take turns as an Uploader's files do with its default `hashWorkers`: small files hashed
/// whole several side by side, the others one worker each up to the default number of hash
/// workers. Resolves to 64 lowercase hex digits; rejects with a `LockerError` (`code:
/// "aborted"` when the signal fired).
#[wasm_bindgen(js_name = hashFile, unchecked_return_type = "string")]
pub async fn hash_file(
    blob: Blob,
    #[wasm_bindgen(
        unchecked_optional_param_type = "{ chunkSize?: number; stallTimeout?: number; onProgress?: (bytes: number) => void; signal?: AbortSignal; webCrypto?: boolean }"
    )]
    options: Option<js_sys::Object>,
) -> Result<JsValue, JsValue> {
    let options = JsValue::from(options.unwrap_or_default());
    let reading = Reading::parse(&options)?;
    let signal = get(&options, "signal").dyn_into::<AbortSignal>().ok();
    let web_crypto = get(&options, "webCrypto").as_bool().unwrap_or(true);
    let workers = FILE_WORKERS.with(Rc::clone);
    let (digest, _) = hash_best(
        &blob,
        reading,
        None,
        web_crypto,
        &workers,
        signal.as_ref(),
        || {},
        on_progress(&options),
    )
    .await?;
    Ok(digest.into())
}
