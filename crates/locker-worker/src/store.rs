//! Where a blob's bytes live: an R2 binding (the `worker` transport: bytes pass through this
//! Worker's data-plane route) or a bucket reached through the S3 API (the `s3` transport: bytes
//! go straight between the browser and storage, and the Worker does its own checks with
//! SigV4-presigned `fetch`es).
//!
//! Credentials of an `s3` bucket are Worker secrets named after the bucket
//! (`LOCKER_S3_{NAME}_ACCESS_KEY_ID`, `LOCKER_S3_{NAME}_SECRET_ACCESS_KEY`, NAME upper-cased with
//! anything but A-Z and 0-9 as `_`), never in D1 and never in a log.

use locker_core::api::{Transport, Verify};
use locker_core::request::EMPTY_SHA256;
use locker_core::s3::{Presigned, PutSpec, S3Bucket};
use locker_core::validate::SNIFF_LEN;
use locker_core::Sha256Hex;
use worker::crypto::{DigestStream, DigestStreamAlgorithm};
use worker::{Bucket, Fetch, Headers, Method, Range, Request, RequestInit, Response, ResponseBody};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{BucketRow, Buckets};

mod readback;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The runtime's `FixedLengthStream`: a body of a known length, so `fetch` sends a
    /// Content-Length (which the presigned PUT signs) instead of a chunked body.
    #[wasm_bindgen(extends = web_sys::TransformStream)]
    type FixedLengthStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(length: f64) -> Result<FixedLengthStream, wasm_bindgen::JsValue>;
}

/// How long the Worker's own presigned requests (HEAD, GET, DELETE) live.
const OWN_REQUEST_TTL_S: u64 = 60;

pub(crate) use locker_core::s3::credential_secrets as secret_names;

/// A stored object read whole (see [`Store::read_whole`]).
pub(crate) struct Whole {
    pub size: u64,
    /// The SHA-256 storage verified on write, if it vouches for one.
    pub sha256: Option<Vec<u8>>,
    /// Empty unless the object has the expected size.
    pub bytes: Vec<u8>,
}

pub(crate) enum Store {
    Binding(Bucket),
    /// An `s3` transport bucket and how a single PUT into it is verified.
    S3(Box<S3Bucket>, Verify),
}

/// A bucket this Worker cannot use as configured: an operator's fix (a secret, a binding, a
/// registration), not a defect of the request or the code, so 503 rather than 500.
fn misconfigured(message: String) -> ApiError {
    worker::console_error!("bucket misconfigured: {message}");
    ApiError::new(ErrorKind::BucketMisconfigured, message)
}

fn s3_error(e: locker_core::s3::S3Error) -> ApiError {
    misconfigured(e.to_string())
}

/// A failure of the R2 binding itself (its own error, not an answer about the object): storage
/// failed, 502 `storage_failed`, not an internal error of the Worker.
pub(crate) fn r2_failed(what: &'static str) -> impl Fn(worker::Error) -> ApiError {
    move |e| {
        worker::console_error!("R2 failed to {what}: {e}");
        ApiError::new(
            ErrorKind::StorageFailed,
            format!("storage (R2) failed to {what}; try again"),
        )
    }
}

fn storage_failed(status: u16, what: &str) -> ApiError {
    worker::console_error!("storage answered {status} to {what}");
    ApiError::new(
        ErrorKind::StorageFailed,
        format!("the storage server answered HTTP {status} to {what}"),
    )
}

impl Store {
    /// The store of bucket `id`. The default bucket needs no lookup.
    pub(crate) async fn open(app: &App, id: &str) -> ApiResult<Self> {
        if id == app.bucket_id.as_str() {
            return Ok(Self::Binding(app.blobs.clone()));
        }
        // Rows name their bucket by foreign key, so this only happens in a registry edited by
        // hand; the bytes are then unreachable until the bucket is registered again.
        let row = app
            .registry()
            .bucket(id)
            .await?
            .ok_or_else(|| misconfigured(format!("bucket {id} is not registered")))?;
        Self::from_row(app, &row)
    }

    pub(crate) fn from_row(app: &App, row: &BucketRow) -> ApiResult<Self> {
        if row.transport == Transport::Worker {
            let binding = row.binding.as_deref().unwrap_or(crate::bindings::BLOBS);
            return Ok(Self::Binding(app.env.bucket(binding).map_err(|_| {
                misconfigured(format!(
                    "bucket {} names the R2 binding {binding}, which this Worker does not have",
                    row.name
                ))
            })?));
        }
        let (key_name, secret_name) = secret_names(&row.name);
        let secret = |name: &str| {
            app.env.secret(name).map(|v| v.to_string()).map_err(|_| {
                misconfigured(format!(
                    "the secret {name} for bucket {} is not set",
                    row.name
                ))
            })
        };
        let (key, secret) = (secret(&key_name)?, secret(&secret_name)?);
        let endpoint = row.endpoint.as_deref().unwrap_or_default();
        S3Bucket::new(
            endpoint,
            &row.name,
            &row.region,
            row.path_style,
            &key,
            &secret,
        )
        .map(|b| Self::S3(Box::new(b), row.verify))
        .map_err(s3_error)
    }

    /// The largest file one presigned PUT may carry to this store.
    pub(crate) fn max_single_put(&self) -> u64 {
        match self {
            Self::Binding(_) => locker_core::validate::MAX_SINGLE_UPLOAD,
            Self::S3(..) => locker_core::validate::MAX_DIRECT_PUT,
        }
    }

    /// The most bytes one request into this store carries if complete verifies such a request
    /// at no cost (an `s3` bucket with [`Verify::Checksum`]); `None` where one request is read
    /// back like parts (or R2 checks both itself).
    pub(crate) fn one_request_free(&self) -> Option<u64> {
        matches!(self, Self::S3(_, Verify::Checksum)).then(|| self.max_single_put())
    }

    pub(crate) fn binding(&self) -> Option<&Bucket> {
        match self {
            Self::Binding(b) => Some(b),
            Self::S3(..) => None,
        }
    }

    /// For the `s3` transport: the presigned PUT the client sends the bytes with.
    pub(crate) fn presign_put(
        &self,
        app: &App,
        spec: &PutSpec<'_>,
        ttl: u64,
    ) -> ApiResult<Option<Presigned>> {
        match self {
            Self::Binding(_) => Ok(None),
            Self::S3(b, _) => b
                .presign_put(spec, app.now_s(), ttl)
                .map(Some)
                .map_err(s3_error),
        }
    }

    /// For the `s3` transport: a presigned GET served with these headers.
    pub(crate) fn presign_get(
        &self,
        app: &App,
        key: &str,
        ttl: u64,
        disposition: &str,
        content_type: &str,
    ) -> ApiResult<Option<String>> {
        match self {
            Self::Binding(_) => Ok(None),
            Self::S3(b, _) => b
                .presign_get(key, app.now_s(), ttl, Some(disposition), Some(content_type))
                .map(Some)
                .map_err(s3_error),
        }
    }

    /// Sends one of the Worker's own presigned requests, with `headers` (a Range, or the
    /// signed headers of a [`Presigned`]).
    async fn s3_send(method: Method, url: &str, with: &[(&str, &str)]) -> ApiResult<Response> {
        let headers = Headers::new();
        for (name, value) in with {
            headers.set(name, value)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(headers);
        let request = Request::new_with_init(url, &init)?;
        Fetch::Request(request).send().await.map_err(|e| {
            worker::console_error!("storage unreachable: {e}");
            ApiError::new(
                ErrorKind::StorageUnreachable,
                "the storage server could not be reached",
            )
        })
    }

    /// For the gateway's server-side upload into an `s3` bucket: sends `body` with a presigned
    /// write-once PUT. `Ok(false)`: the key already held an object (the server answered 412).
    /// The caller must still verify what is stored, as for any upload to an S3 server.
    pub(crate) async fn put_s3(
        &self,
        app: &App,
        spec: &PutSpec<'_>,
        body: worker::Data,
    ) -> ApiResult<bool> {
        let Self::S3(b, _) = self else {
            return Err(ApiError::new(
                ErrorKind::Internal,
                "put_s3 on an R2 binding",
            ));
        };
        let presigned = b
            .presign_put(spec, app.now_s(), OWN_REQUEST_TTL_S)
            .map_err(s3_error)?;
        let headers = Headers::new();
        for (name, value) in &presigned.headers {
            headers.set(name, value)?;
        }
        let js_body: wasm_bindgen::JsValue = match body {
            worker::Data::Bytes(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
            worker::Data::ReadableStream(stream) => {
                let fixed = FixedLengthStream::new(spec.size as f64).map_err(|_| {
                    ApiError::new(ErrorKind::Internal, "could not make a fixed-length body")
                })?;
                // The pipe runs while fetch reads the other end.
                let _pipe = stream.pipe_to(&fixed.writable());
                fixed.readable().into()
            }
            _ => js_sys::Uint8Array::new_with_length(0).into(),
        };
        let mut init = RequestInit::new();
        init.with_method(Method::Put)
            .with_headers(headers)
            .with_body(Some(js_body));
        let request = Request::new_with_init(&presigned.url, &init)?;
        let response = Fetch::Request(request).send().await.map_err(|e| {
            worker::console_error!("storage unreachable: {e}");
            ApiError::new(
                ErrorKind::StorageUnreachable,
                "the storage server could not be reached",
            )
        })?;
        match response.status_code() {
            200 | 201 | 204 => Ok(true),
            412 => Ok(false),
            400 => Err(ApiError::new(ErrorKind::Sha256Mismatch,
                "the storage server refused the body (its SHA-256 or length is not the declared one)",
            )),
            status => Err(storage_failed(status, "PUT")),
        }
    }

    /// A presigned GET of the object by this Worker, optionally of a byte range.
    async fn s3_get(
        b: &S3Bucket,
        app: &App,
        key: &str,
        range: Option<&str>,
    ) -> ApiResult<Response> {
        let url = b
            .presign_get(key, app.now_s(), OWN_REQUEST_TTL_S, None, None)
            .map_err(s3_error)?;
        let range: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        Self::s3_send(Method::Get, &url, &range).await
    }

    /// The stored object's size and, where storage verified it on write (R2), its SHA-256;
    /// `None` when there is no object. An S3 server's checksum is never taken: some store
    /// the bytes even after refusing their checksum, so [`Store::digest`] hashes them.
    pub(crate) async fn head(
        &self,
        app: &App,
        key: &str,
    ) -> ApiResult<Option<(u64, Option<Vec<u8>>)>> {
        match self {
            Self::Binding(b) => Ok(b
                .head(key)
                .await
                .map_err(r2_failed("read an object's metadata"))?
                .map(|o| (o.size(), o.checksum().sha256))),
            Self::S3(b, _) => {
                let url = b
                    .presign_head(key, app.now_s(), OWN_REQUEST_TTL_S)
                    .map_err(s3_error)?;
                let response = Self::s3_send(Method::Head, &url, &[]).await?;
                match response.status_code() {
                    200 => Ok(response
                        .headers()
                        .get("content-length")?
                        .and_then(|l| l.parse().ok())
                        .map(|size| (size, None))),
                    404 => Ok(None),
                    status => Err(storage_failed(status, "HEAD")),
                }
            }
        }
    }

    /// As [`Store::head`], for an object a client wrote with one PUT: in an `s3` bucket whose
    /// policy is [`Verify::Checksum`], the SHA-256 its server reports (a HEAD with checksum
    /// mode), which such a server computed over the bytes it kept; `None` there when it reports
    /// none, or one that is not of a whole object's bytes. Other stores answer as [`Store::head`].
    pub(crate) async fn head_one_put(
        &self,
        app: &App,
        key: &str,
    ) -> ApiResult<Option<(u64, Option<Vec<u8>>)>> {
        let Self::S3(b, Verify::Checksum) = self else {
            return self.head(app, key).await;
        };
        let presigned = b
            .presign_head_checksum(key, app.now_s(), OWN_REQUEST_TTL_S)
            .map_err(s3_error)?;
        let headers: Vec<(&str, &str)> = presigned
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let response = Self::s3_send(Method::Head, &presigned.url, &headers).await?;
        match response.status_code() {
            200 => {}
            404 => return Ok(None),
            status => return Err(storage_failed(status, "HEAD")),
        }
        let size = response
            .headers()
            .get("content-length")?
            .and_then(|l| l.parse().ok());
        let reported = response
            .headers()
            .get("x-amz-checksum-sha256")?
            .and_then(|h| locker_core::s3::reported_sha256(&h))
            .map(|d| d.as_bytes().to_vec());
        Ok(size.map(|size| (size, reported)))
    }

    /// The whole stored object in one read, for an object small enough to hold in memory
    /// (the caller bounds `expected`, the reserved size): its size, the SHA-256 storage
    /// verified on write (R2, as [`Store::head`]; never an S3 server's) and its bytes. An object
    /// of another size than `expected` is not read: its bytes come back empty. `None` when
    /// there is no object.
    pub(crate) async fn read_whole(
        &self,
        app: &App,
        key: &str,
        expected: u64,
    ) -> ApiResult<Option<Whole>> {
        match self {
            Self::Binding(b) => {
                let Some(object) = b
                    .get(key)
                    .execute()
                    .await
                    .map_err(r2_failed("read an object"))?
                else {
                    return Ok(None);
                };
                let size = object.size();
                let sha256 = object.checksum().sha256;
                let bytes = match object.body() {
                    Some(body) if size == expected && size > 0 => {
                        body.bytes().await.map_err(r2_failed("read an object"))?
                    }
                    _ => Vec::new(),
                };
                Ok(Some(Whole {
                    size,
                    sha256,
                    bytes,
                }))
            }
            Self::S3(b, _) => {
                let mut response = Self::s3_get(b, app, key, None).await?;
                match response.status_code() {
                    200 => {}
                    404 => return Ok(None),
                    status => return Err(storage_failed(status, "GET")),
                }
                let length: Option<u64> = response
                    .headers()
                    .get("content-length")?
                    .and_then(|l| l.parse().ok());
                if let Some(size) = length.filter(|l| *l != expected) {
                    return Ok(Some(Whole {
                        size,
                        sha256: None,
                        bytes: Vec::new(),
                    }));
                }
                let bytes = response.bytes().await?;
                Ok(Some(Whole {
                    size: bytes.len() as u64,
                    sha256: None,
                    bytes,
                }))
            }
        }
    }

    /// The SHA-256 of the stored bytes (`size` of them, as a HEAD just said), streamed through
    /// the runtime's native digest. 0 bytes have one digest and nothing to read: storage
    /// answers an empty object without a body stream, or not at all to a ranged read. A large
    /// object of an S3 server is read in ranged GETs side by side (see [`readback`]); an R2
    /// binding's is one stream (this Worker reads it from R2 itself, and R2 verified its
    /// SHA-256 on write, so [`Store::head`] gives that and this is rarely called for one).
    pub(crate) async fn digest(&self, app: &App, key: &str, size: u64) -> ApiResult<Vec<u8>> {
        if size == 0 {
            return Ok(EMPTY_SHA256.as_bytes().to_vec());
        }
        let missing = || ApiError::new(ErrorKind::NotUploaded, "the stored object vanished");
        let body = match self {
            Self::Binding(b) => {
                let object = b
                    .get(key)
                    .execute()
                    .await
                    .map_err(r2_failed("read an object"))?
                    .ok_or_else(missing)?;
                object
                    .body()
                    .ok_or_else(missing)?
                    .response_body()
                    .map_err(r2_failed("read an object"))?
            }
            Self::S3(b, _) => {
                if size >= readback::RANGED_FROM {
                    if let Some(buffers) = readback::RangeBuffers::take() {
                        return readback::digest_ranges(b, app, key, size, buffers).await;
                    }
                }
                let response = Self::s3_get(b, app, key, None).await?;
                match response.status_code() {
                    200 => {}
                    404 => return Err(missing()),
                    status => return Err(storage_failed(status, "GET")),
                }
                match response.body() {
                    ResponseBody::Stream(stream) => ResponseBody::Stream(stream.clone()),
                    ResponseBody::Body(bytes) => ResponseBody::Body(bytes.clone()),
                    ResponseBody::Empty => ResponseBody::Empty,
                }
            }
        };
        // The object changed size since the HEAD (it is replaced only by the same bytes, so
        // this is a vanished or foreign object): hash what is there, the caller compares.
        let stream = match body {
            ResponseBody::Stream(stream) => stream,
            ResponseBody::Body(bytes) => return Ok(Sha256Hex::digest(&bytes).as_bytes().to_vec()),
            ResponseBody::Empty => return Ok(EMPTY_SHA256.as_bytes().to_vec()),
        };
        let digest = DigestStream::new(DigestStreamAlgorithm::Sha256);
        // The pipe runs in the background; `digest()` resolves when it consumed it all.
        let _pipe = stream.pipe_to(digest.raw());
        Ok(digest.digest().await?.to_vec())
    }

    /// The leading bytes of a stored object of `size` bytes, for the magic-number check. An
    /// empty object has none, and a ranged read of it is refused by storage (R2 fails it).
    pub(crate) async fn sniff(&self, app: &App, key: &str, size: u64) -> ApiResult<Vec<u8>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        match self {
            Self::Binding(b) => {
                let object = b
                    .get(key)
                    .range(Range::Prefix {
                        length: SNIFF_LEN as u64,
                    })
                    .execute()
                    .await
                    .map_err(r2_failed("read an object"))?;
                match object.as_ref().and_then(worker::Object::body) {
                    Some(body) => Ok(body.bytes().await.map_err(r2_failed("read an object"))?),
                    None => Ok(Vec::new()),
                }
            }
            Self::S3(b, _) => {
                let range = format!("bytes=0-{}", SNIFF_LEN - 1);
                let mut response = Self::s3_get(b, app, key, Some(&range)).await?;
                match response.status_code() {
                    200 | 206 => {
                        let mut bytes = response.bytes().await?;
                        bytes.truncate(SNIFF_LEN);
                        Ok(bytes)
                    }
                    404 | 416 => Ok(Vec::new()),
                    status => Err(storage_failed(status, "GET")),
                }
            }
        }
    }

    /// The stored object's body, to copy elsewhere; `None` when there is no object.
    pub(crate) async fn body(&self, app: &App, key: &str) -> ApiResult<Option<ResponseBody>> {
        match self {
            Self::Binding(b) => match b
                .get(key)
                .execute()
                .await
                .map_err(r2_failed("read an object"))?
            {
                None => Ok(None),
                Some(object) => match object.body() {
                    Some(body) => Ok(Some(
                        body.response_body().map_err(r2_failed("read an object"))?,
                    )),
                    None => Ok(Some(ResponseBody::Empty)),
                },
            },
            Self::S3(b, _) => {
                let response = Self::s3_get(b, app, key, None).await?;
                match response.status_code() {
                    200 => Ok(Some(match response.body() {
                        ResponseBody::Stream(stream) => ResponseBody::Stream(stream.clone()),
                        ResponseBody::Body(bytes) => ResponseBody::Body(bytes.clone()),
                        ResponseBody::Empty => ResponseBody::Empty,
                    })),
                    404 => Ok(None),
                    status => Err(storage_failed(status, "GET")),
                }
            }
        }
    }

    /// Writes a copy of a blob (`spec`: its key, size, type and SHA-256) from `body`, streamed:
    /// create-only, and checked against the SHA-256 by R2 itself or by the S3 server's
    /// `x-amz-checksum-sha256` (which the caller does not trust: it verifies what is stored).
    /// `Ok(false)`: the key already held an object.
    pub(crate) async fn put_copy(
        &self,
        app: &App,
        spec: &PutSpec<'_>,
        body: ResponseBody,
    ) -> ApiResult<bool> {
        if let Self::S3(..) = self {
            // put_s3 gives a stream its fixed length itself.
            let data = match body {
                ResponseBody::Stream(stream) if spec.size > 0 => {
                    worker::Data::ReadableStream(stream)
                }
                ResponseBody::Body(bytes) => worker::Data::Bytes(bytes),
                ResponseBody::Stream(_) | ResponseBody::Empty => worker::Data::Bytes(Vec::new()),
            };
            return self.put_s3(app, spec, data).await;
        }
        let data = match body {
            ResponseBody::Stream(stream) if spec.size > 0 => {
                // A body of a known length: R2 refuses a stream of unknown length, and the S3
                // PUT signs its Content-Length; a source longer or shorter fails the pipe.
                let fixed = FixedLengthStream::new(spec.size as f64).map_err(|_| {
                    ApiError::new(ErrorKind::Internal, "could not make a fixed-length body")
                })?;
                let _pipe = stream.pipe_to(&fixed.writable());
                worker::Data::ReadableStream(fixed.readable())
            }
            ResponseBody::Body(bytes) => worker::Data::Bytes(bytes),
            ResponseBody::Stream(_) | ResponseBody::Empty => worker::Data::Bytes(Vec::new()),
        };
        let Self::Binding(b) = self else {
            return Err(ApiError::new(
                ErrorKind::Internal,
                "an S3 store without put_s3",
            ));
        };
        Self::put_r2(b, spec, data).await
    }

    /// Writes `data` at `spec.key` in an R2 binding, create-only, and checked against
    /// `spec.sha256` by R2 itself, so wrong bytes and a second write are refused by storage, not
    /// by a check that could race. `Ok(false)`: the key already held an object; since a blob's
    /// key is its content hash and every write is hash-checked, those are these bytes.
    pub(crate) async fn put_r2(
        bucket: &Bucket,
        spec: &PutSpec<'_>,
        data: worker::Data,
    ) -> ApiResult<bool> {
        let put = bucket
            .put(spec.key, data)
            .sha256(spec.sha256.as_bytes().to_vec())
            .http_metadata(worker::HttpMetadata {
                content_type: Some(spec.content_type.to_owned()),
                ..Default::default()
            })
            .only_if(worker::Conditional {
                etag_does_not_match: Some("*".into()),
                ..Default::default()
            })
            .execute()
            .await;
        match put {
            Ok(stored) => Ok(stored.is_some()),
            Err(e) => {
                // R2 names no error kinds in the binding: its checksum refusal is known by text.
                let text = e.to_string().to_lowercase();
                if text.contains("sha-256") || text.contains("sha256") || text.contains("checksum")
                {
                    Err(ApiError::new(
                        ErrorKind::Sha256Mismatch,
                        "the body's SHA-256 is not the expected one; nothing was stored",
                    ))
                } else {
                    worker::console_error!("write into R2 failed: {e}");
                    Err(ApiError::new(
                        ErrorKind::StorageFailed,
                        format!("R2 refused the write: {e}"),
                    ))
                }
            }
        }
    }

    /// Deletes the object (nothing to delete is fine).
    pub(crate) async fn delete(&self, app: &App, key: &str) -> ApiResult<()> {
        match self {
            Self::Binding(b) => Ok(b.delete(key).await.map_err(r2_failed("delete an object"))?),
            Self::S3(b, _) => {
                let url = b
                    .presign_delete(key, app.now_s(), OWN_REQUEST_TTL_S)
                    .map_err(s3_error)?;
                let response = Self::s3_send(Method::Delete, &url, &[]).await?;
                match response.status_code() {
                    200 | 204 | 404 => Ok(()),
                    status => Err(storage_failed(status, "DELETE")),
                }
            }
        }
    }
}
