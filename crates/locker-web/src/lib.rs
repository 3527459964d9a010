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

use wasm_bindgen::prelude::*;

pub use digest::{hash_blob_js, Sha256};
pub use hash_worker::{hash_file, hash_worker_main};
pub use uploader::Uploader;

use crate::error::LockerError;

/// The module's version (its crate version).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// `GET {endpoint}/healthz`, parsed and checked for the shape of the shared `Health` type.
///
/// Resolves to the Worker's answer (also when it reports `degraded`, so a page can show why);
/// rejects when the Worker cannot be reached or answers something that is not a health report.
#[wasm_bindgen(js_name = fetchHealth)]
pub async fn fetch_health(endpoint: String) -> Result<JsValue, JsValue> {
    let url = [endpoint.trim_end_matches('/'), "/healthz"].concat();
    let answer = transfer::fetch_text("GET", &url, &[], None, None).await?;
    let health = transfer::parse_json(&answer.text)
        .filter(is_health)
        .ok_or_else(|| {
            LockerError::new(error::code::BAD_ANSWER, "the answer is not a health report")
                .with_status(answer.status)
        })?;
    Ok(health)
}

/// The fields of `locker_core::Health`: status, version and server strings, and the d1 and r2
/// checks, each `{ok, detail, ms}`.
fn is_health(value: &JsValue) -> bool {
    let check = |name| {
        let c = js::get(value, name);
        js::get(&c, "ok").as_bool().is_some()
            && js::get_string(&c, "detail").is_some()
            && js::get_number(&c, "ms").is_some()
    };
    ["status", "version", "server"]
        .iter()
        .all(|f| js::get_string(value, f).is_some())
        && check("d1")
        && check("r2")
}

/// Talc instead of std's dlmalloc: a few KB smaller and faster on wasm (BENCHMARKS.md, weight).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
