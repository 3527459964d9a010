//! The locker browser module: hashes files in a Web Worker and uploads them to a locker Worker.
//!
//! Every export returns a `Result` or a rejecting promise, so a failure reaches JavaScript as
//! an `Error` with a message (a `LockerError` with a `code` for uploads), never as a panic that
//! kills the module.

mod digest;
mod error;
mod hash_worker;
mod js;
mod slots;
mod transfer;
mod uploader;

use gloo_net::http::Method;
use wasm_bindgen::prelude::*;

pub use digest::{hash_blob_js, Sha256};
pub use hash_worker::{hash_file, hash_worker_main};
pub use uploader::Uploader;

/// The module's version (its crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// `GET {endpoint}/healthz`, decoded as the shared `locker_core::Health`.
///
/// Resolves to the Worker's answer (also when it reports `degraded`, so a page can show why);
/// rejects when the Worker cannot be reached or answers something that is not a health report.
#[wasm_bindgen(js_name = fetchHealth)]
pub async fn fetch_health(endpoint: String) -> Result<JsValue, JsValue> {
    let url = [endpoint.trim_end_matches('/'), "/healthz"].concat();
    // Decoded whatever the status: a 503 carries the report of what failed.
    let answer = transfer::fetch(Method::GET, &url, None, None, None).await?;
    let health: locker_core::Health = answer.decode("GET /healthz")?;
    Ok(js::to_js(&health)?)
}

/// Talc instead of std's dlmalloc: a few KB smaller and faster on wasm (BENCHMARKS.md, weight).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
