//! Multipart uploads in storage: an R2 binding's (`create_multipart_upload`, `upload_part`,
//! `complete`, `abort`) or an S3 server's (the Worker's own presigned requests; the client
//! sends the parts). Nothing here touches the registry.

use locker_core::s3::{
    complete_body, parse_complete, parse_list_parts, parse_upload_id, CompletedPart, ListedPart,
    PartSpec, Presigned, S3Bucket, XmlError,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use locker_core::Sha256Hex;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::crypto::{DigestStream, DigestStreamAlgorithm};
use worker::js_sys::{self, Uint8Array};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::{Bucket, Fetch, Headers, HttpMetadata, Method, Request, RequestInit, UploadedPart};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::store::Store;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The runtime's `FixedLengthStream`: R2 takes a part only from a stream of known length.
    #[wasm_bindgen(extends = web_sys::TransformStream)]
    type FixedLengthStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(length: f64) -> Result<FixedLengthStream, JsValue>;
}

/// How long the Worker's own presigned requests live.
const OWN_REQUEST_TTL_S: u64 = 60;
/// The most ListParts pages read for one upload: 10,000 parts at 1,000 a page, and one more.
const MAX_LIST_PAGES: usize = 11;

fn storage_failed(status: u16, what: &str) -> ApiError {
    worker::console_error!("storage answered {status} to {what}");
    ApiError::new(
        ErrorKind::StorageFailed,
        format!("the storage server answered HTTP {status} to {what}"),
    )
}

fn xml_failed(e: &XmlError, what: &str) -> ApiError {
    worker::console_error!("{what}: {e}");
    ApiError::new(
        ErrorKind::StorageFailed,
        format!("the storage server's answer to {what} was not usable: {e}"),
    )
}

fn s3_error(e: &locker_core::s3::S3Error) -> ApiError {
    worker::console_error!("bucket misconfigured: {e}");
    ApiError::new(ErrorKind::BucketMisconfigured, e.to_string())
}

fn r2_failed(e: &worker::Error, what: &str) -> ApiError {
    worker::console_error!("R2 {what}: {e}");
    ApiError::new(ErrorKind::StorageFailed, format!("R2 refused to {what}"))
}

/// Sends one of the Worker's presigned requests, with its signed headers and `body`.
async fn send(p: &Presigned, body: Option<String>) -> ApiResult<worker::Response> {
    let method = match p.method {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        _ => Method::Get,
    };
    send_url(method, &p.url, &p.headers, body).await
}

async fn send_url(
    method: Method,
    url: &str,
    signed: &[(String, String)],
    body: Option<String>,
) -> ApiResult<worker::Response> {
    let headers = Headers::new();
    for (name, value) in signed {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(JsValue::from_str(&b)));
    }
    let request = Request::new_with_init(url, &init)?;
    Fetch::Request(request).send().await.map_err(|e| {
        worker::console_error!("storage unreachable: {e}");
        ApiError::new(
            ErrorKind::StorageUnreachable,
            "the storage server could not be reached",
        )
    })
}

/// Starts a multipart upload of `key`; its storage id.
pub(crate) async fn create(
    app: &App,
    store: &Store,
    key: &str,
    content_type: &str,
) -> ApiResult<String> {
    match store {
        Store::Binding(bucket) => {
            let upload = bucket
                .create_multipart_upload(key)
                .http_metadata(HttpMetadata {
                    content_type: Some(content_type.to_owned()),
                    ..Default::default()
                })
                .execute()
                .await
                .map_err(|e| r2_failed(&e, "start a multipart upload"))?;
            Ok(upload.upload_id().await)
        }
        Store::S3(b) => {
            let p = b
                .presign_create_multipart(key, content_type, app.now_s(), OWN_REQUEST_TTL_S)
                .map_err(|e| s3_error(&e))?;
            let mut response = send(&p, None).await?;
            let status = response.status_code();
            let text = response.text().await?;
            if status != 200 {
                return Err(storage_failed(status, "CreateMultipartUpload"));
            }
            parse_upload_id(&text).map_err(|e| xml_failed(&e, "CreateMultipartUpload"))
        }
    }
}

/// Aborts the multipart upload: storage drops its parts. An upload storage no longer knows
/// (aborted or completed before) is fine.
pub(crate) async fn abort(app: &App, store: &Store, key: &str, upload_id: &str) -> ApiResult<()> {
    match store {
        Store::Binding(bucket) => {
            let upload = bucket
                .resume_multipart_upload(key, upload_id)
                .map_err(|e| r2_failed(&e, "find the multipart upload"))?;
            upload
                .abort()
                .await
                .map_err(|e| r2_failed(&e, "abort the multipart upload"))
        }
        Store::S3(b) => {
            let url = b
                .presign_abort_multipart(key, upload_id, app.now_s(), OWN_REQUEST_TTL_S)
                .map_err(|e| s3_error(&e))?;
            let response = send_url(Method::Delete, &url, &[], None).await?;
            match response.status_code() {
                200 | 204 | 404 => Ok(()),
                status => Err(storage_failed(status, "AbortMultipartUpload")),
            }
        }
    }
}

/// The parts an S3 server holds for the upload, every page of them.
pub(crate) async fn list_parts(
    app: &App,
    b: &S3Bucket,
    key: &str,
    upload_id: &str,
) -> ApiResult<Vec<ListedPart>> {
    let mut parts = Vec::new();
    let mut marker = None;
    for _ in 0..MAX_LIST_PAGES {
        let url = b
            .presign_list_parts(key, upload_id, marker, app.now_s(), OWN_REQUEST_TTL_S)
            .map_err(|e| s3_error(&e))?;
        let mut response = send_url(Method::Get, &url, &[], None).await?;
        let status = response.status_code();
        let text = response.text().await?;
        if status == 404 {
            // NoSuchUpload: aborted or completed; it holds no parts.
            return Ok(Vec::new());
        }
        if status != 200 {
            return Err(storage_failed(status, "ListParts"));
        }
        let page = parse_list_parts(&text).map_err(|e| xml_failed(&e, "ListParts"))?;
        parts.extend(page.parts);
        match page.next_marker.map(u16::try_from) {
            None => return Ok(parts),
            Some(Ok(m)) => marker = Some(m),
            Some(Err(_)) => break,
        }
    }
    Err(xml_failed(
        &XmlError::Malformed("NextPartNumberMarker"),
        "ListParts",
    ))
}

/// How a complete ended in storage.
pub(crate) enum Completed {
    /// The object now exists at the key, made of the parts.
    Made,
    /// An object was at the key already (write-once): nothing was made; the parts stay.
    KeyTaken,
}

/// CompleteMultipartUpload on an S3 server, write-once.
pub(crate) async fn complete_s3(
    app: &App,
    b: &S3Bucket,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
) -> ApiResult<Completed> {
    let p = b
        .presign_complete_multipart(key, upload_id, app.now_s(), OWN_REQUEST_TTL_S)
        .map_err(|e| s3_error(&e))?;
    let mut response = send(&p, Some(complete_body(parts))).await?;
    let status = response.status_code();
    let text = response.text().await?;
    match status {
        200 => match parse_complete(&text) {
            Ok(()) => Ok(Completed::Made),
            Err(XmlError::Refused { code, .. }) if code == "PreconditionFailed" => {
                Ok(Completed::KeyTaken)
            }
            Err(e) => Err(xml_failed(&e, "CompleteMultipartUpload")),
        },
        412 => Ok(Completed::KeyTaken),
        status => {
            worker::console_error!("CompleteMultipartUpload: {text}");
            Err(storage_failed(status, "CompleteMultipartUpload"))
        }
    }
}

/// Completes an R2 multipart upload from the parts' numbers and ETags, in order.
pub(crate) async fn complete_r2(
    bucket: &Bucket,
    key: &str,
    upload_id: &str,
    parts: Vec<(u16, String)>,
) -> ApiResult<()> {
    let upload = bucket
        .resume_multipart_upload(key, upload_id)
        .map_err(|e| r2_failed(&e, "find the multipart upload"))?;
    upload
        .complete(
            parts
                .into_iter()
                .map(|(number, etag)| UploadedPart::new(number, etag)),
        )
        .await
        .map_err(|e| r2_failed(&e, "complete the multipart upload"))?;
    Ok(())
}

/// A presigned UploadPart for the client (the `s3` transport).
pub(crate) fn presign_part(
    app: &App,
    b: &S3Bucket,
    part: &PartSpec<'_>,
    ttl: u64,
) -> ApiResult<Presigned> {
    b.presign_upload_part(part, app.now_s(), ttl)
        .map_err(|e| s3_error(&e))
}

/// Why a part was not stored.
pub(crate) enum PartRefused {
    /// Its bytes are not the declared ones: R2 kept nothing.
    WrongBytes,
    Failed(ApiError),
}

/// Streams `body` (exactly `size` bytes, as Content-Length said) into part `number` of an R2
/// multipart upload, and lets R2 keep it only if its SHA-256 is `sha256`: the body is teed, one
/// branch into the runtime's native digest, the other into R2 through a stream that, at its end,
/// fails unless the digest matched. A failed body stream fails `upload_part`, so R2 never has
/// the wrong bytes as that part. Returns the part's ETag.
pub(crate) async fn put_part_r2(
    bucket: &Bucket,
    key: &str,
    upload_id: &str,
    number: u16,
    body: web_sys::ReadableStream,
    size: u64,
    sha256: &Sha256Hex,
) -> Result<String, PartRefused> {
    let internal = |what: &str| PartRefused::Failed(ApiError::new(ErrorKind::Internal, what));
    let branches = body.tee();
    let (to_digest, to_r2): (web_sys::ReadableStream, web_sys::ReadableStream) = (
        branches.get(0).unchecked_into(),
        branches.get(1).unchecked_into(),
    );
    let digest = DigestStream::new(DigestStreamAlgorithm::Sha256);
    // Runs in the background; the digest resolves once this branch is read to its end.
    let _digesting = to_digest.pipe_to(digest.raw().unchecked_ref());
    let digest_promise = digest.raw().digest();
    let expected = *sha256.as_bytes();
    let verdict = Rc::new(Cell::new(None::<bool>));
    let seen = verdict.clone();
    // The last chunk is held back until the digest is known: R2 receives all of the part's
    // bytes only if they are the declared ones. Without this, a receiver that has every byte
    // Content-Length announced (which it learns from the fixed length) could keep the part
    // before the stream's end reports the mismatch.
    let held: Rc<RefCell<Option<JsValue>>> = Rc::new(RefCell::new(None));
    let holding = held.clone();
    let transform = Closure::<dyn FnMut(JsValue, JsValue) -> Result<(), JsValue>>::new(
        move |chunk: JsValue, controller: JsValue| {
            let controller: web_sys::TransformStreamDefaultController = controller.unchecked_into();
            if let Some(previous) = holding.replace(Some(chunk)) {
                controller.enqueue_with_chunk(&previous)?;
            }
            Ok(())
        },
    )
    .into_js_value();
    let flush = Closure::once_into_js(move |controller: JsValue| {
        future_to_promise(async move {
            let buffer = JsFuture::from(digest_promise).await?;
            let matched = Uint8Array::new(&buffer).to_vec() == expected;
            seen.set(Some(matched));
            if !matched {
                return Err(
                    js_sys::Error::new("the part's SHA-256 is not the declared one").into(),
                );
            }
            let controller: web_sys::TransformStreamDefaultController = controller.unchecked_into();
            if let Some(last) = held.borrow_mut().take() {
                controller.enqueue_with_chunk(&last)?;
            }
            Ok(JsValue::UNDEFINED)
        })
    });
    let transformer = js_sys::Object::new();
    js_sys::Reflect::set(&transformer, &JsValue::from_str("transform"), &transform)
        .and_then(|_| js_sys::Reflect::set(&transformer, &JsValue::from_str("flush"), &flush))
        .map_err(|_| internal("could not make the checking stream"))?;
    let check = web_sys::TransformStream::new_with_transformer(&transformer)
        .map_err(|_| internal("could not make the checking stream"))?;
    #[allow(clippy::cast_precision_loss)] // parts are at most 5 GiB, far below 2^53
    let fixed = FixedLengthStream::new(size as f64)
        .map_err(|_| internal("could not make a fixed-length body"))?;
    let checked = to_r2.pipe_through(&web_sys::ReadableWritablePair::new(
        &check.readable(),
        &check.writable(),
    ));
    let _piping = checked.pipe_to(&fixed.writable());
    let upload = bucket
        .resume_multipart_upload(key, upload_id)
        .map_err(|e| PartRefused::Failed(r2_failed(&e, "find the multipart upload")))?;
    let stored = upload
        .upload_part(number, worker::Data::ReadableStream(fixed.readable()))
        .await;
    // The verdict again, whatever R2 answered: a consumer that stops reading at the declared
    // length could finish before the checking stream's end. Such a part is then never recorded,
    // so never completed; it is replaced by the next upload of its number or dropped by abort.
    let matched = match verdict.get() {
        Some(m) => Some(m),
        None => digest.digest().await.ok().map(|d| d.to_vec() == expected),
    };
    match (stored, matched) {
        (Ok(part), Some(true)) => Ok(part.etag()),
        (_, Some(false)) => Err(PartRefused::WrongBytes),
        (Ok(_), None) => Err(internal("the part's digest could not be read")),
        (Err(e), _) => Err(PartRefused::Failed(r2_failed(&e, "store the part"))),
    }
}
