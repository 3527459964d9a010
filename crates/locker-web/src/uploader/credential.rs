//! The credential of the Worker's API calls: a fixed upload token, or one asked of the page's
//! `getToken()` when needed, cached until it is due for renewal and renewed once when the
//! Worker refuses it as expired or unknown.

use std::cell::RefCell;

use gloo_net::http::Method;
use js_sys::{Function, Promise};
use locker_core::client::{self, UploadToken};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use super::pipeline::Pending;
use super::Inner;
use crate::error::{code, LockerError};
use crate::js::{get, get_string};
use crate::transfer::{call, Answer};

pub(super) type Token = UploadToken;

pub(super) enum Credential {
    Fixed(Token),
    Provider {
        get: Function,
        cached: RefCell<Option<Token>>,
        /// One `getToken()` call shared by every upload that needs a token at the same time.
        inflight: RefCell<Option<Promise>>,
    },
}

/// What `getToken()` (or the `token` option) gave: a bare token string, or the answer of
/// `POST /v1/tokens` (or the part of it with `token`), decoded with serde as
/// `locker_core::client::TokenAnswer` from its JSON.
fn parse_token(value: &JsValue) -> Result<Token, LockerError> {
    let parsed = match value.as_string() {
        Some(t) => client::parse_token(Some(&t), None, None),
        None => {
            // `undefined` and functions stringify to nothing: read as an empty answer.
            let json = js_sys::JSON::stringify(value)
                .ok()
                .and_then(|j| j.as_string())
                .unwrap_or_else(|| "null".into());
            client::parse_token_answer(&json)
        }
    };
    parsed.map_err(|e| LockerError::invalid(e.to_string()))
}

impl Credential {
    /// The `token` option if given, else the `getToken` function.
    pub(super) fn parse(o: &JsValue) -> Result<Self, LockerError> {
        match (
            get_string(o, "token"),
            get(o, "getToken").dyn_into::<Function>(),
        ) {
            (Some(t), _) => Ok(Self::Fixed(parse_token(&JsValue::from_str(&t))?)),
            (None, Ok(get)) => Ok(Self::Provider {
                get,
                cached: RefCell::default(),
                inflight: RefCell::default(),
            }),
            (None, Err(_)) => Err(LockerError::invalid("token or getToken is required")),
        }
    }

    pub(super) async fn token(&self) -> Result<Token, LockerError> {
        let (get, cached, inflight) = match self {
            Self::Fixed(t) => return Ok(t.clone()),
            Self::Provider {
                get,
                cached,
                inflight,
            } => (get, cached, inflight),
        };
        if let Some(t) = cached.borrow().as_ref() {
            if js_sys::Date::now() < t.renew_at_ms {
                return Ok(t.clone());
            }
        }
        let existing = inflight.borrow().clone();
        let promise = match existing {
            Some(p) => p,
            None => {
                let value = get
                    .call0(&JsValue::NULL)
                    .map_err(|e| LockerError::from_js("getToken() failed", e))?;
                let p = Promise::resolve(&value);
                *inflight.borrow_mut() = Some(p.clone());
                p
            }
        };
        let outcome = JsFuture::from(promise).await;
        inflight.borrow_mut().take();
        let value = outcome.map_err(|e| {
            LockerError::from_js("getToken() failed", e).with_code(code::TOKEN_FAILED)
        })?;
        let token = parse_token(&value)?;
        *cached.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    /// Whether `e` asks for a new token, and one can be had: the cached one is dropped.
    fn renew(&self, e: &LockerError) -> bool {
        match self {
            Self::Provider { cached, .. } if client::renews_token(e.status, &e.code) => {
                cached.borrow_mut().take();
                true
            }
            _ => false,
        }
    }
}

impl Inner {
    /// A JSON call to the Worker. An expired or unknown token is renewed once.
    pub(super) fn api<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        body: Option<&'a str>,
        signal: Option<&'a AbortSignal>,
    ) -> Pending<'a> {
        Box::pin(self.api_once_renewed(method, path, body, signal))
    }

    async fn api_once_renewed(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, LockerError> {
        let credential = &self.options.credential;
        let url = [self.options.endpoint.as_str(), path].concat();
        let token = credential.token().await?;
        let body = body.map(str::to_owned);
        match call(
            method.clone(),
            &url,
            Some(&token.token),
            body.clone(),
            signal,
        )
        .await
        {
            Err(e) if credential.renew(&e) => {
                let token = credential.token().await?;
                call(method, &url, Some(&token.token), body, signal).await
            }
            other => other,
        }
    }
}
