//! Multipart uploads in storage: an R2 binding's (`create_multipart_upload`, `upload_part`,
//! `complete`, `abort`) or an S3 server's (the Worker's own presigned requests; the client
//! sends the parts). Nothing here touches the registry.

use locker_core::s3::{
    complete_body, parse_complete, parse_list_parts, parse_upload_id, CompletedPart, ListedPart,
    PartSpec, Presigned, S3Bucket, XmlError,
};
use locker_core::Sha256Hex;
use wasm_bindgen::{JsCast, JsValue};
use worker::crypto::{DigestStream, DigestStreamAlgorithm};
use worker::js_sys::{self, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
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
        Store::S3(b, _) => {
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
        Store::S3(b, _) => {
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
    /// Its bytes are not the declared ones: the caller must not record the part.
    WrongBytes,
    Failed(ApiError),
}

/// `source.pipeTo(sink, { preventClose: true })`, through the JS object (web-sys types the
/// options only behind a feature this crate does not build).
fn pipe_open(
    source: &web_sys::ReadableStream,
    sink: &web_sys::WritableStream,
) -> Result<js_sys::Promise, JsValue> {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &JsValue::from_str("preventClose"), &JsValue::TRUE)?;
    let pipe_to: js_sys::Function =
        js_sys::Reflect::get(source, &JsValue::from_str("pipeTo"))?.dyn_into()?;
    Ok(pipe_to.call2(source, sink, &options)?.unchecked_into())
}

/// Streams `body` (exactly `size` bytes, as Content-Length said) into part `number` of an R2
/// multipart upload and checks that its SHA-256 is `sha256`; the ETag only if it is.
///
/// The body is teed: one branch into the runtime's native digest, the other piped natively into
/// R2 through a `FixedLengthStream` (R2 takes a part only at a known length). No Rust runs per
/// chunk and no chunk is copied. The pipe leaves the R2 side open at its end; it is closed only
/// once the digest matched, and aborted otherwise, so a store that waits for the body's end
/// never keeps wrong bytes.
///
/// Should a store keep the part on its last byte anyway, wrong bytes still never reach a file:
/// the caller records a part (its ETag in `upload_parts`) only after `Ok` here, and complete
/// hands R2 only recorded parts, by ETag. R2 refuses to complete with an ETag that is not the
/// one it holds for that number, so an unrecorded part, the bytes of which got a new ETag, can
/// never be assembled; the next PUT of its number replaces it, and abort drops it.
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
    let expected = *sha256.as_bytes();
    #[allow(clippy::cast_precision_loss)] // parts are at most 5 GiB, far below 2^53
    let fixed = FixedLengthStream::new(size as f64)
        .map_err(|_| internal("could not make a fixed-length body"))?;
    let sink = fixed.writable();
    let piped = pipe_open(&to_r2, &sink).map_err(|_| internal("could not pipe the part"))?;
    let digest_promise = digest.raw().digest();
    // Ends the R2 side once both the pipe and the digest are done: closed if the bytes are the
    // declared ones, aborted otherwise (or if the body failed). Runs beside `upload_part`,
    // which waits for that end.
    let ending = async move {
        let piped = JsFuture::from(piped).await;
        let matched = match JsFuture::from(digest_promise).await {
            Ok(buffer) => Some(Uint8Array::new(&buffer).to_vec() == expected),
            Err(_) => None,
        };
        if piped.is_ok() && matched == Some(true) {
            // A close that fails shows as a failed `upload_part`.
            let _closed = JsFuture::from(sink.close()).await;
        } else {
            let reason = js_sys::Error::new("the part's SHA-256 is not the declared one");
            let _aborted = JsFuture::from(sink.abort_with_reason(&reason)).await;
        }
        matched
    };
    let upload = bucket
        .resume_multipart_upload(key, upload_id)
        .map_err(|e| PartRefused::Failed(r2_failed(&e, "find the multipart upload")))?;
    let storing = upload.upload_part(number, worker::Data::ReadableStream(fixed.readable()));
    let (stored, matched) = futures_util::future::join(storing, ending).await;
    match (stored, matched) {
        (Ok(part), Some(true)) => Ok(part.etag()),
        (_, Some(false)) => Err(PartRefused::WrongBytes),
        (Ok(_), None) => Err(internal("the part's digest could not be read")),
        (Err(e), _) => Err(PartRefused::Failed(r2_failed(&e, "store the part"))),
    }
}
