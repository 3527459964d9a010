//! Hashing in a dedicated Web Worker, so a large file never blocks the page.
//!
//! The page starts a module worker from a tiny script (a Blob URL) that imports this same
//! module, receives the page's compiled `WebAssembly.Module` (no second download or compile),
//! and calls [`hash_worker_main`]. The protocol, all plain objects:
//! page -> worker: the Module, then `{blob, chunkSize, stallTimeout, partSize}`;
//! worker -> page: `{type: "ready"}`, `{type: "progress", bytes}`, then
//! `{type: "done", sha256, parts}` (`parts`: the digest of each part of `partSize` bytes, empty
//! without one) or `{type: "error", code, message}`.
//! Cancelling terminates the worker: nothing outlives it.

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{
    AbortSignal, Blob, BlobPropertyBag, DedicatedWorkerGlobalScope, MessageEvent, Url, Worker,
    WorkerOptions, WorkerType,
};

use crate::digest::{hash_blob_parts, on_progress, Reading};
use crate::error::{code, LockerError};
use crate::js::{deferred, get, obj, on_abort, wait, Finish};

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

/// Everything that must be undone when a hash ends, however it ends.
struct Running {
    worker: Worker,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.worker.terminate();
        let _ = Url::revoke_object_url(&self.url);
    }
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

/// Hashes `blob` in a new Web Worker, and with a `part_size` each part of it too (see
/// [`hash_blob_parts`]). `progress(bytes_hashed)` runs on the page.
pub(crate) async fn hash_in_worker(
    blob: &Blob,
    reading: Reading,
    part_size: Option<u64>,
    signal: Option<&AbortSignal>,
    progress: impl Fn(f64) + 'static,
) -> Result<(String, Vec<String>), LockerError> {
    if signal.is_some_and(AbortSignal::aborted) {
        return Err(LockerError::aborted());
    }
    let (worker, url) = start_worker()?;
    let running = Running { worker, url };
    let (done, finish) = deferred();

    let job = obj(&reading.props());
    let _ = js_sys::Reflect::set(&job, &"blob".into(), blob);
    if let Some(p) = part_size {
        // Part sizes are whole MiB far below 2^53: exact as a number.
        let _ = js_sys::Reflect::set(&job, &"partSize".into(), &(p as f64).into());
    }
    let on_message = on_message(running.worker.clone(), job, finish.clone(), progress);
    let on_error = on_error(finish.clone());
    running
        .worker
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    running
        .worker
        .set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let _abort = signal.map(|s| on_abort(s, move || finish.call(Err(LockerError::aborted()))));
    running
        .worker
        .post_message(&wasm_bindgen::module())
        .map_err(|e| LockerError::from_js("could not start the hash worker", e))?;

    let outcome = wait(done).await;
    drop(running);
    let done = outcome?;
    let sha256 = get(&done, "sha256")
        .as_string()
        .ok_or_else(|| LockerError::new(code::HASH_FAILED, "the worker sent no digest"))?;
    let parts = get(&done, "parts")
        .dyn_into::<js_sys::Array>()
        .map(|a| a.iter().filter_map(|p| p.as_string()).collect())
        .unwrap_or_default();
    Ok((sha256, parts))
}

/// `hashFile(blob, {chunkSize, stallTimeout, onProgress, signal})`: SHA-256 of a File or Blob
/// in a new Web Worker, read as a stream into reused buffers (constant memory). Resolves to 64
/// lowercase hex digits; rejects with a `LockerError` (`code: "aborted"` when the signal fired).
#[wasm_bindgen(js_name = hashFile, unchecked_return_type = "string")]
pub async fn hash_file(
    blob: Blob,
    #[wasm_bindgen(
        unchecked_optional_param_type = "{ chunkSize?: number; stallTimeout?: number; onProgress?: (bytes: number) => void; signal?: AbortSignal }"
    )]
    options: Option<js_sys::Object>,
) -> Result<JsValue, JsValue> {
    let options = JsValue::from(options.unwrap_or_default());
    let reading = Reading::parse(&options)?;
    let signal = get(&options, "signal").dyn_into::<AbortSignal>().ok();
    let (digest, _) =
        hash_in_worker(&blob, reading, None, signal.as_ref(), on_progress(&options)).await?;
    Ok(digest.into())
}
