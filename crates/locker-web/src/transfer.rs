//! The two kinds of HTTP the module makes: JSON calls to the Worker's API (`fetch`), and the
//! byte transfer to a signed URL (XMLHttpRequest, because fetch reports no upload progress).
//!
//! JSON goes through the browser's own `JSON` rather than serde_json: the four bodies are tiny
//! and serde_json alone was a quarter of the module (BENCHMARKS.md, weight).

use js_sys::{Promise, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortSignal, Blob, Headers, ProgressEvent, Request, RequestInit, Response, XmlHttpRequest,
};

use crate::error::{code, LockerError};
use crate::js::{check_aborted, deferred, get, get_string, on_abort, wait, Watchdog};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, in a window and in a worker alike.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
}

/// `text` as JSON, if it is JSON.
pub fn parse_json(text: &str) -> Option<JsValue> {
    JSON::parse(text).ok()
}

/// A non-2xx answer as an error: the Worker's `{"error": {"code", "message"}}`, a storage
/// server's XML error (an expired presigned URL reads as `expired`, like the Worker's), or a
/// generic message for anything else (a proxy's HTML error page, say). The rules are
/// `locker_core::client::classify`; the browser's `JSON` parses.
pub fn refusal(status: u16, body: &str) -> LockerError {
    let worker_error = |text: &str| {
        let detail = get(&parse_json(text)?, "error");
        Some((
            get_string(&detail, "code")?,
            get_string(&detail, "message")?,
        ))
    };
    let r = locker_core::client::classify(status, body, worker_error);
    LockerError::new(&r.code, r.message).with_status(status)
}

/// What came back from [`fetch_text`]: the HTTP status and the whole body as text.
pub struct Answer {
    pub status: u16,
    pub text: String,
}

/// `fetch(url)` with the given method, headers and optional text body; reads the whole body.
pub async fn fetch_text(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    signal: Option<&AbortSignal>,
) -> Result<Answer, LockerError> {
    check_aborted(signal)?;
    let fail = |e: JsValue| {
        if signal.is_some_and(AbortSignal::aborted) {
            LockerError::aborted()
        } else {
            LockerError::from_js("the Worker could not be reached", e)
        }
    };
    let init = RequestInit::new();
    init.set_method(method);
    let h = Headers::new().map_err(fail)?;
    for (name, value) in headers {
        h.set(name, value).map_err(fail)?;
    }
    init.set_headers(&h);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    init.set_signal(signal);
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| LockerError::from_js("bad request", e).with_code(code::INVALID))?;
    let response: Response = JsFuture::from(global_fetch(&request))
        .await
        .map_err(fail)?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(fail)?)
        .await
        .map_err(fail)?;
    Ok(Answer {
        status: response.status(),
        text: text.as_string().unwrap_or_default(),
    })
}

/// `method url` with a Bearer credential and an optional JSON body; a 2xx JSON answer comes
/// back as the parsed value, anything else as the Worker's refusal.
pub async fn call(
    method: &str,
    url: &str,
    credential: &str,
    body: Option<&JsValue>,
    signal: Option<&AbortSignal>,
) -> Result<JsValue, LockerError> {
    let json = match body {
        Some(b) => Some(
            JSON::stringify(b)
                .ok()
                .and_then(|s| s.as_string())
                .ok_or_else(|| LockerError::invalid("the request body is not JSON"))?,
        ),
        None => None,
    };
    let authorization = ["Bearer ", credential].concat();
    let mut headers = vec![("authorization", authorization.as_str())];
    if json.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let answer = fetch_text(method, url, &headers, json.as_deref(), signal).await?;
    if !(200..300).contains(&answer.status) {
        return Err(refusal(answer.status, &answer.text));
    }
    parse_json(&answer.text)
        .filter(JsValue::is_object)
        .ok_or_else(|| {
            LockerError::new(code::BAD_ANSWER, "the Worker's answer is not a JSON object")
                .with_status(answer.status)
        })
}

/// Sends `body` to a signed URL. `progress(sent, total)` follows the upload. A transfer that
/// makes no progress and gets no answer for `stall_ms` is aborted as a (retryable) network
/// failure. Resolves to `undefined`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &Blob,
    signal: Option<&AbortSignal>,
    stall_ms: f64,
    progress: impl Fn(f64, f64) + 'static,
) -> Result<JsValue, LockerError> {
    check_aborted(signal)?;
    let fail = |e: JsValue| LockerError::from_js("could not start the transfer", e);
    let xhr = XmlHttpRequest::new().map_err(fail)?;
    xhr.open(method, url).map_err(fail)?;
    for (name, value) in headers {
        xhr.set_request_header(name, value).map_err(fail)?;
    }

    let (done, finish) = deferred();
    let finish = move |result: Result<(), LockerError>| {
        finish.call(result.map(|()| JsValue::UNDEFINED));
    };
    let watchdog = {
        let xhr = xhr.clone();
        let finish = finish.clone();
        std::rc::Rc::new(Watchdog::new(stall_ms, move || {
            // Settled first, so the abort event that follows changes nothing.
            finish(Err(LockerError::new(
                code::NETWORK,
                "the transfer made no progress (stallTimeout)",
            )));
            let _ = xhr.abort();
        }))
    };
    let on_progress = {
        let watchdog = watchdog.clone();
        Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
            watchdog.arm();
            progress(e.loaded(), e.total());
        })
    };
    let on_load = {
        let xhr = xhr.clone();
        let finish = finish.clone();
        Closure::<dyn FnMut()>::new(move || {
            let status = xhr.status().unwrap_or(0);
            if (200..300).contains(&status) {
                finish(Ok(()));
            } else {
                let body = xhr.response_text().ok().flatten().unwrap_or_default();
                finish(Err(refusal(status, &body)));
            }
        })
    };
    let on_error = {
        let finish = finish.clone();
        Closure::<dyn FnMut()>::new(move || {
            finish(Err(LockerError::new(
                code::NETWORK,
                "the transfer failed (network error)",
            )));
        })
    };
    let on_abort_event = {
        let finish = finish.clone();
        Closure::<dyn FnMut()>::new(move || finish(Err(LockerError::aborted())))
    };
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
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
    wait(done).await
}
