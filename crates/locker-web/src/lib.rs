//! The locker browser module: talks to the Worker from a web page.
//!
//! Every export returns `Result<_, JsError>`, so a failure reaches JavaScript as a rejected
//! promise with a message, never as a panic that kills the module.

use std::fmt::Display;

use locker_core::Health;
use wasm_bindgen::prelude::*;

/// The one conversion from any Rust error to what JavaScript sees.
fn js_error(context: &str, e: impl Display) -> JsError {
    JsError::new(&format!("{context}: {e}"))
}

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
pub async fn fetch_health(endpoint: String) -> Result<JsValue, JsError> {
    let url = format!("{}/healthz", endpoint.trim_end_matches('/'));
    let response = gloo_net::http::Request::get(&url)
        .send()
        .await
        .map_err(|e| js_error("the Worker could not be reached", e))?;
    let status = response.status();
    let health: Health = response
        .json()
        .await
        .map_err(|e| js_error(&format!("unexpected answer (HTTP {status})"), e))?;
    let json = serde_json::to_string(&health).map_err(|e| js_error("encoding", e))?;
    js_sys::JSON::parse(&json).map_err(|_| JsError::new("could not hand the answer to JS"))
}
