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

use locker_core::Health;
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

/// `GET {endpoint}/healthz`, parsed and checked against the shared `Health` type.
///
/// Resolves to the Worker's answer (also when it reports `degraded`, so a page can show why);
/// rejects when the Worker cannot be reached or answers something that is not a health report.
#[wasm_bindgen(js_name = fetchHealth)]
pub async fn fetch_health(endpoint: String) -> Result<JsValue, JsValue> {
    let url = format!("{}/healthz", endpoint.trim_end_matches('/'));
    let response = gloo_net::http::Request::get(&url)
        .send()
        .await
        .map_err(|e| {
            LockerError::new(
                error::code::NETWORK,
                format!("the Worker could not be reached: {e}"),
            )
        })?;
    let status = response.status();
    let health: Health = response.json().await.map_err(|e| {
        LockerError::new(
            error::code::BAD_ANSWER,
            format!("unexpected answer (HTTP {status}): {e}"),
        )
    })?;
    let json = serde_json::to_string(&health)
        .map_err(|e| LockerError::new(error::code::BAD_ANSWER, e.to_string()))?;
    js_sys::JSON::parse(&json)
}
