//! The two kinds of HTTP the uploader makes: JSON calls to the Worker's API (gloo-net), and the
//! byte transfer to a signed URL (XMLHttpRequest, because fetch reports no upload progress).

use gloo_net::http::{Request, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, Blob, ProgressEvent, XmlHttpRequest};

use crate::error::{code, LockerError};
use crate::js::{check_aborted, deferred, on_abort, wait};

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// The Worker's `{"error": {"code", "message"}}`, or a generic message for anything else (a
/// proxy's HTML error page, say).
pub fn refusal(status: u16, body: &str) -> LockerError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => LockerError::new(&b.error.code, b.error.message),
        Err(_) => LockerError::new(
            code::BAD_ANSWER,
            format!("the server answered HTTP {status}"),
        ),
    }
    .with_status(status)
}

/// `method {endpoint}{path}` with a Bearer credential and an optional JSON body; decodes a
/// 2xx JSON answer into `T`.
pub async fn call<T: DeserializeOwned>(
    method: &str,
    url: &str,
    credential: &str,
    body: Option<&Value>,
    signal: Option<&AbortSignal>,
) -> Result<T, LockerError> {
    check_aborted(signal)?;
    let builder = RequestBuilder::new(url)
        .method(
            method
                .parse()
                .map_err(|_| LockerError::invalid("bad method"))?,
        )
        .header("authorization", &format!("Bearer {credential}"))
        .abort_signal(signal);
    let request: Request = match body {
        Some(b) => builder
            .json(b)
            .map_err(|e| LockerError::invalid(e.to_string()))?,
        None => builder
            .build()
            .map_err(|e| LockerError::invalid(e.to_string()))?,
    };
    let response = request.send().await.map_err(|e| {
        if signal.is_some_and(AbortSignal::aborted) {
            LockerError::aborted()
        } else {
            LockerError::new(
                code::NETWORK,
                format!("the Worker could not be reached: {e}"),
            )
        }
    })?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| LockerError::new(code::NETWORK, format!("the answer was cut off: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| {
        LockerError::new(code::BAD_ANSWER, format!("unexpected answer: {e}")).with_status(status)
    })
}

/// Sends `body` to a signed URL. `progress(sent, total)` follows the upload.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &Blob,
    signal: Option<&AbortSignal>,
    progress: impl Fn(f64, f64) + 'static,
) -> Result<(), LockerError> {
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
    let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
        progress(e.loaded(), e.total());
    });
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
    wait(done).await.map(|_| ())
}
