//! The one error type of the module and how JavaScript sees it: an `Error` named `LockerError`
//! with a machine-readable `code`, the HTTP `status` when there was one, and `retryable`.

use std::fmt;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

pub(crate) use locker_core::client::code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockerError {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
}

impl LockerError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            status: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID, message)
    }

    pub fn aborted() -> Self {
        Self::new(code::ABORTED, "the upload was cancelled")
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: &str) -> Self {
        code.clone_into(&mut self.code);
        self
    }

    /// A JavaScript exception or rejection, with what was being done.
    pub fn from_js(context: &str, e: JsValue) -> Self {
        let detail = Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| e.as_string())
            .unwrap_or_else(|| "unknown error".into());
        Self::new(code::NETWORK, [context, ": ", &detail].concat())
    }

    /// What a rejected promise carried: a `LockerError` made by [`From`] below keeps its code and
    /// status; anything else is a network-level failure.
    pub fn from_rejection(e: JsValue) -> Self {
        let code = Reflect::get(&e, &"code".into())
            .ok()
            .and_then(|c| c.as_string());
        match code {
            Some(code) => Self {
                code,
                message: Reflect::get(&e, &"message".into())
                    .ok()
                    .and_then(|m| m.as_string())
                    .unwrap_or_default(),
                status: Reflect::get(&e, &"status".into())
                    .ok()
                    .and_then(|s| s.as_f64())
                    .map(|s| s as u16),
            },
            None => Self::from_js("failed", e),
        }
    }

    /// Worth trying again (`locker_core::client::retryable`).
    pub fn retryable(&self) -> bool {
        locker_core::client::retryable(self.status, &self.code)
    }

    pub fn is_aborted(&self) -> bool {
        self.code == code::ABORTED
    }
}

impl fmt::Display for LockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<LockerError> for JsValue {
    fn from(e: LockerError) -> Self {
        let error = js_sys::Error::new(&e.message);
        error.set_name("LockerError");
        let retryable = e.retryable();
        let status = e.status.map_or(JsValue::NULL, JsValue::from);
        // Setting own properties on a fresh Error cannot fail.
        let _ = Reflect::set(&error, &"code".into(), &e.code.into());
        let _ = Reflect::set(&error, &"status".into(), &status);
        let _ = Reflect::set(&error, &"retryable".into(), &retryable.into());
        error.into()
    }
}
