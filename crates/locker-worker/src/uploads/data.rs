//! The data plane: the signed PUT into R2, and what stores and verifies a blob's bytes.

use locker_core::api::DataPut;
use locker_core::api::Operation;
use locker_core::api::UploadState;
use locker_core::sign::PutClaims;
use locker_core::{validate, Sha256Hex};
use worker::{Conditional, HttpMetadata, Request};

use super::{load_upload, FileSpec};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::store::Store;

/// `PUT /v1/data/{id}?sig=`: the signature is the credential. Streams the body into R2 with
/// the expected SHA-256 and a create-only condition, so R2 itself refuses wrong bytes and a
/// second write.
pub(crate) async fn data_put(
    app: &App,
    req: &Request,
    id: &str,
    sig: &str,
    log: &mut LogEntry,
) -> ApiResult<DataPut> {
    // The row first, so a refused attempt is logged against the tenant whose upload it targets.
    let row = load_upload(app, id).await?;
    let spec = row.as_ref().map(FileSpec::from_row).transpose()?;
    if let (Some(row), Some(spec)) = (&row, &spec) {
        spec.log_into(log);
        log.bucket_id = Some(row.bucket_id.clone());
    }
    let claims: PutClaims = app.signer.verify(sig, app.now_s())?;
    if claims.uid != id {
        return Err(ApiError::forbidden(
            "the signature does not match this request",
        ));
    }
    let (Some(row), Some(spec)) = (row, spec) else {
        return Err(ApiError::not_found("no such upload"));
    };
    if row.state != UploadState::Pending {
        return Err(ApiError::new(
            ErrorKind::UploadClosed,
            format!("this upload is {}; ask for a new URL", row.state.as_str()),
        ));
    }
    if claims.sha256 != spec.sha256 || claims.size != spec.size || claims.ct != spec.content_type {
        return Err(ApiError::forbidden(
            "the signature does not match this request",
        ));
    }
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    if content_type != spec.content_type {
        return Err(ApiError::new(
            ErrorKind::ContentTypeMismatch,
            format!("Content-Type must be {}", spec.content_type),
        ));
    }
    require_length(req, spec.size, "this URL is for")?;
    let data = body_data(req, spec.size);
    log.operation = Some(Operation::Upload);
    let Some(bucket) = Store::open(app, &row.bucket_id).await?.binding().cloned() else {
        return Err(ApiError::new(
            ErrorKind::DirectUpload,
            "this upload goes straight to storage, not through the Worker",
        ));
    };
    if store(&bucket, &spec, data).await? {
        log.bytes = spec.size;
        Ok(DataPut::Stored { size: spec.size })
    } else {
        Ok(DataPut::Exists { size: spec.size })
    }
}

/// Refuses a body whose Content-Length is missing (411: a chunked body's length is known only
/// after it was streamed into storage) or not exactly `size` (400); `what` names what the
/// length belongs to in the message ("this URL is for", "part 3 is").
pub(crate) fn require_length(req: &Request, size: u64, what: &str) -> ApiResult<()> {
    let length = req
        .headers()
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok());
    match length {
        None => Err(ApiError::new(
            ErrorKind::LengthRequired,
            "send Content-Length (chunked bodies are refused)",
        )),
        Some(len) if len != size => Err(ApiError::new(
            ErrorKind::SizeMismatch,
            format!("the body is {len} bytes; {what} exactly {size}"),
        )),
        Some(_) => Ok(()),
    }
}

/// The request body to store, `size` bytes as Content-Length said. An empty file may arrive
/// without a body (null) or as an empty stream; either way 0 bytes are written as 0 bytes, so
/// the put never depends on how a runtime treats a null value.
pub(crate) fn body_data(req: &Request, size: u64) -> worker::Data {
    match req.inner().body() {
        Some(stream) if size > 0 => worker::Data::ReadableStream(stream),
        _ => worker::Data::Bytes(Vec::new()),
    }
}

/// Writes `data` at the blob's key, create-only and checked against the expected SHA-256 by R2
/// itself. `Ok(false)`: the key already held an object; since the key is the content hash and
/// every write is hash-checked, those are these bytes.
pub(crate) async fn store(
    bucket: &worker::Bucket,
    spec: &FileSpec,
    data: worker::Data,
) -> ApiResult<bool> {
    let put = bucket
        .put(spec.key().as_str(), data)
        .sha256(spec.sha256.as_bytes().to_vec())
        .http_metadata(HttpMetadata {
            content_type: Some(spec.content_type.clone()),
            ..Default::default()
        })
        .only_if(Conditional {
            etag_does_not_match: Some("*".into()),
            ..Default::default()
        })
        .execute()
        .await;
    match put {
        Ok(stored) => Ok(stored.is_some()),
        Err(e) => {
            let text = e.to_string().to_lowercase();
            if text.contains("sha-256") || text.contains("sha256") || text.contains("checksum") {
                Err(ApiError::new(
                    ErrorKind::Sha256Mismatch,
                    "the body's SHA-256 is not the expected one; nothing was stored",
                ))
            } else {
                Err(e.into())
            }
        }
    }
}

/// What [`check_stored`] found, short of wrong bytes (those are its errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// The stored object has the reserved size and SHA-256.
    Verified,
    /// The stored object has the reserved size; its SHA-256 was not computed, because storage
    /// does not vouch for one and it is larger than the caller hashes.
    SizeOnly,
}

/// Size and SHA-256 of the stored object: one HEAD, and the bytes hashed only where storage
/// did not verify a checksum itself (see [`Store::head`]).
pub(crate) async fn verify_stored(app: &App, store: &Store, spec: &FileSpec) -> ApiResult<()> {
    check_stored(app, store, spec, u64::MAX).await.map(|_| ())
}

/// As [`verify_stored`], but an object of more than `hash_max` bytes is not hashed: its size
/// checked, it answers [`Checked::SizeOnly`].
pub(crate) async fn check_stored(
    app: &App,
    store: &Store,
    spec: &FileSpec,
    hash_max: u64,
) -> ApiResult<Checked> {
    let key = spec.key();
    let Some((size, checksum)) = store.head(app, key.as_str()).await? else {
        return Err(not_uploaded());
    };
    check_size(size, spec)?;
    let digest = match checksum {
        Some(d) => d,
        None if size > hash_max => return Ok(Checked::SizeOnly),
        None => store.digest(app, key.as_str(), size).await?,
    };
    check_digest(&digest, spec)?;
    Ok(Checked::Verified)
}

/// The largest object `complete` reads whole, in one request, rather than HEAD, hash-reading
/// GET and ranged sniff GET: small files are most of a many-file upload, and each storage
/// request costs a round trip; 1 MiB is held in memory without concern.
const READ_WHOLE_MAX: u64 = 1 << 20;

/// As [`verify_stored`], and answers the object's leading bytes (at most
/// [`validate::SNIFF_LEN`]) for the magic-number check. An object of at most
/// [`READ_WHOLE_MAX`] bytes is read once, and its size, digest and leading bytes all come from
/// that read (R2's verified checksum still preferred to hashing, as [`Store::head`] says).
pub(crate) async fn verify_and_sniff(
    app: &App,
    store: &Store,
    spec: &FileSpec,
) -> ApiResult<Vec<u8>> {
    let key = spec.key();
    if spec.size > READ_WHOLE_MAX {
        verify_stored(app, store, spec).await?;
        return store.sniff(app, key.as_str(), spec.size).await;
    }
    let Some(whole) = store.read_whole(app, key.as_str(), spec.size).await? else {
        return Err(not_uploaded());
    };
    check_size(whole.size, spec)?;
    match whole.sha256 {
        Some(d) => check_digest(&d, spec)?,
        None => check_digest(Sha256Hex::digest(&whole.bytes).as_bytes(), spec)?,
    }
    let mut head = whole.bytes;
    head.truncate(validate::SNIFF_LEN);
    Ok(head)
}

fn not_uploaded() -> ApiError {
    ApiError::new(
        ErrorKind::NotUploaded,
        "no bytes were uploaded for this reservation yet",
    )
}

fn check_size(size: u64, spec: &FileSpec) -> ApiResult<()> {
    if size == spec.size {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::StoredSizeMismatch,
        format!("stored {size} bytes, expected {}", spec.size),
    ))
}

fn check_digest(digest: &[u8], spec: &FileSpec) -> ApiResult<()> {
    if digest == spec.sha256.as_bytes() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::StoredSha256Mismatch,
        "the stored bytes do not have the reserved SHA-256",
    ))
}
