//! The two kinds of HTTP the module makes: JSON calls to the Worker's API (gloo-net's `fetch`,
//! bodies encoded and answers decoded with serde as the wire types of `locker_core::api`), and
//! the byte transfer to a signed URL (XMLHttpRequest, because fetch reports no upload progress).

use std::rc::Rc;

use gloo_net::http::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, Blob, ProgressEvent, XmlHttpRequest};

use crate::error::{code, LockerError};
use crate::js::{check_aborted, deferred, on_abort, wait, Finish, Watchdog};

/// A non-2xx answer as an error: the Worker's `{"error": {"code", "message"}}` (decoded as
/// `locker_core::api::ErrorBody`), a storage server's XML error (an expired presigned URL reads
/// as `expired`, like the Worker's), or a generic message for anything else (a proxy's HTML
/// error page, say). The rules are `locker_core::client::classify`.
pub(crate) fn refusal(status: u16, body: &str) -> LockerError {
    let r = locker_core::client::classify(status, body);
    LockerError::new(&r.code, r.message).with_status(status)
}

/// An answer's status and body, as the Worker sent them.
pub(crate) struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    /// The body decoded as its `locker_core::api` type; anything else is a `bad_answer` naming
    /// `what` was answered.
    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T, LockerError> {
        serde_json::from_str(&self.text).map_err(|e| {
            LockerError::new(
                code::BAD_ANSWER,
                ["unexpected answer to ", what, ": ", &e.to_string()].concat(),
            )
            .with_status(self.status)
        })
    }
}

/// `method url` with an optional Bearer credential and an optional JSON body (already encoded
/// from its `locker_core::api` request type). A 2xx answer comes back as text for
/// [`Answer::decode`]; anything else as the refusal it carries. Not generic over the answer
/// type, so the fetch code is in the module once.
pub(crate) async fn call(
    method: Method,
    url: &str,
    credential: Option<&str>,
    json: Option<String>,
    signal: Option<&AbortSignal>,
) -> Result<Answer, LockerError> {
    let answer = fetch(method, url, credential, json, signal).await?;
    if !(200..300).contains(&answer.status) {
        return Err(refusal(answer.status, &answer.text));
    }
    Ok(answer)
}

/// [`call`] whatever the status of the answer.
pub(crate) async fn fetch(
    method: Method,
    url: &str,
    credential: Option<&str>,
    json: Option<String>,
    signal: Option<&AbortSignal>,
) -> Result<Answer, LockerError> {
    check_aborted(signal)?;
    let fail = |e: gloo_net::Error| {
        if signal.is_some_and(AbortSignal::aborted) {
            LockerError::aborted()
        } else {
            LockerError::new(
                code::NETWORK,
                ["the Worker could not be reached: ", &e.to_string()].concat(),
            )
        }
    };
    let mut request = RequestBuilder::new(url).method(method).abort_signal(signal);
    if let Some(credential) = credential {
        request = request.header("authorization", &["Bearer ", credential].concat());
    }
    let request = match json {
        Some(json) => request
            .header("content-type", "application/json")
            .body(json),
        None => request.build(),
    }
    .map_err(|e| LockerError::invalid(["bad request: ", &e.to_string()].concat()))?;
    let response = request.send().await.map_err(fail)?;
    let status = response.status();
    let text = response.text().await.map_err(fail)?;
    Ok(Answer { status, text })
}

/// An `XMLHttpRequest` opened for `method url` with `headers`.
fn open(
    method: &str,
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<XmlHttpRequest, JsValue> {
    let xhr = XmlHttpRequest::new()?;
    xhr.open(method, url)?;
    for (name, value) in headers {
        xhr.set_request_header(name, value)?;
    }
    Ok(xhr)
}

/// The storage server answered: a 2xx settles `finish` as done, anything else as its refusal.
fn on_load(xhr: XmlHttpRequest, finish: Finish) -> Closure<dyn FnMut()> {
    Closure::new(move || {
        let status = xhr.status().unwrap_or(0);
        if (200..300).contains(&status) {
            finish.call(Ok(JsValue::UNDEFINED));
        } else {
            let body = xhr.response_text().ok().flatten().unwrap_or_default();
            finish.call(Err(refusal(status, &body)));
        }
    })
}

/// Once the whole body is sent, how many `stallTimeout`s the answer may take. The storage
/// behind the Worker may take well over `stallTimeout` to take a large body it already has
/// (a part answered after 30 s has been seen): aborting then would send the whole body again
/// for nothing. A connection that died after the body went is still given up, only later.
pub(crate) const ANSWER_WAIT_STALLS: f64 = 10.0;

/// Aborts the transfer as a (retryable) network failure when it makes no progress for
/// `stall_ms` (or, once the body is sent, gets no answer for [`ANSWER_WAIT_STALLS`] times it).
fn stall_watchdog(xhr: XmlHttpRequest, finish: Finish, stall_ms: f64) -> Rc<Watchdog> {
    Rc::new(Watchdog::new(stall_ms, move || {
        // Settled first, so the abort event that follows changes nothing.
        finish.call(Err(LockerError::new(
            code::NETWORK,
            "the transfer made no progress (stallTimeout)",
        )));
        let _ = xhr.abort();
    }))
}

/// Sends `body` to a signed URL. `progress(sent, total)` follows the upload. A transfer that
/// makes no progress and gets no answer for `stall_ms` is aborted as a (retryable) network
/// failure; once the whole body is sent, the answer gets [`ANSWER_WAIT_STALLS`] times that.
pub(crate) async fn send(
    method: &str,
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    body: &Blob,
    signal: Option<&AbortSignal>,
    stall_ms: f64,
    progress: impl Fn(f64, f64) + 'static,
) -> Result<(), LockerError> {
    check_aborted(signal)?;
    let fail = |e: JsValue| LockerError::from_js("could not start the transfer", e);
    let xhr = open(method, url, headers).map_err(fail)?;

    let (done, finish) = deferred();
    let on_load = on_load(xhr.clone(), finish.clone());
    let watchdog = stall_watchdog(xhr.clone(), finish.clone(), stall_ms);
    let on_progress = {
        let watchdog = watchdog.clone();
        Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
            watchdog.arm();
            progress(e.loaded(), e.total());
        })
    };
    // Every byte is sent: from here only the answer is awaited, under the longer wait.
    let on_sent = {
        let watchdog = watchdog.clone();
        Closure::<dyn FnMut()>::new(move || watchdog.arm_for(stall_ms * ANSWER_WAIT_STALLS))
    };
    let on_error = {
        let finish = finish.clone();
        Closure::<dyn FnMut()>::new(move || {
            finish.call(Err(LockerError::new(
                code::NETWORK,
                "the transfer failed (network error)",
            )));
        })
    };
    let on_abort_event =
        { Closure::<dyn FnMut()>::new(move || finish.call(Err(LockerError::aborted()))) };
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        upload.set_onload(Some(on_sent.as_ref().unchecked_ref()));
    }
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_ontimeout(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(on_abort_event.as_ref().unchecked_ref()));
    let _abort = signal.map(|s| {
        let xhr = xhr.clone();
        on_abort(s, move || {
            let _ = xhr.abort();
        })
    });
    xhr.send_with_opt_blob(Some(body)).map_err(fail)?;
    watchdog.arm();
    wait(done).await.map(drop)
}
