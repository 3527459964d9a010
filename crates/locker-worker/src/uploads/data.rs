//! The data plane: the signed PUT into R2, and what stores and verifies a blob's bytes.

use locker_core::api::DataPut;
use locker_core::api::Operation;
use locker_core::api::UploadState;
use locker_core::s3::PutSpec;
use locker_core::sign::PutClaims;
use locker_core::{validate, ObjectKey, Sha256Hex};
use worker::Request;

use super::{load_upload, FileSpec};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::store::Store;

/// `PUT /v1/data/{id}?sig=`: the signature is the credential. Streams the body into R2 with
/// the expected SHA-256 and a create-only condition (see [`Store::put_r2`]).
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

impl FileSpec {
    /// What a write of this file's bytes at `key` (its [`FileSpec::key`]) binds: storage
    /// refuses other bytes, another length or type, and a second write.
    pub(crate) fn put_spec<'a>(&'a self, key: &'a ObjectKey) -> PutSpec<'a> {
        PutSpec {
            key: key.as_str(),
            size: self.size,
            content_type: &self.content_type,
            sha256: &self.sha256,
        }
    }
}

/// Writes `data` at the blob's key in an R2 binding: see [`Store::put_r2`].
pub(crate) async fn store(
    bucket: &worker::Bucket,
    spec: &FileSpec,
    data: worker::Data,
) -> ApiResult<bool> {
    Store::put_r2(bucket, &spec.put_spec(&spec.key()), data).await
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

/// How the object being checked came to be, which decides whose checksum may stand in for
/// hashing its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// By one PUT of the client's (or the gateway's): a `checksum` bucket's server reports
    /// the SHA-256 of what it kept (see [`Store::head_one_put`]).
    OnePut,
    /// By storage combining parts: only R2's own checksum counts (an S3 server's checksum of
    /// such an object is one of its parts' checksums), so an S3 object is read back.
    InParts,
}

/// Size and SHA-256 of the stored object: one HEAD, and the bytes hashed unless storage vouches
/// for the reserved SHA-256 itself (see [`check_stored`]).
pub(crate) async fn verify_stored(
    app: &App,
    store: &Store,
    spec: &FileSpec,
    written: Written,
) -> ApiResult<()> {
    check_stored(app, store, spec, u64::MAX, written)
        .await
        .map(|_| ())
}

/// As [`verify_stored`], but an object of more than `hash_max` bytes is not hashed: its size
/// checked, it answers [`Checked::SizeOnly`].
///
/// Storage vouches for the bytes it kept when R2 checked them on write (a binding) or, for an
/// object of [`Written::OnePut`], a `checksum` bucket's server reports their SHA-256. A report
/// of the reserved digest is taken; R2's of another digest means other bytes; an S3 server's
/// of another digest, or none, is not taken either way: the stored bytes are hashed, so wrong
/// bytes are refused (and a server that misreports is caught) exactly as under `read_back`.
pub(crate) async fn check_stored(
    app: &App,
    store: &Store,
    spec: &FileSpec,
    hash_max: u64,
    written: Written,
) -> ApiResult<Checked> {
    let key = spec.key();
    let head = match written {
        Written::OnePut => store.head_one_put(app, key.as_str()).await?,
        Written::InParts => store.head(app, key.as_str()).await?,
    };
    let Some((size, checksum)) = head else {
        return Err(not_uploaded());
    };
    check_size(size, spec)?;
    let digest = match checksum {
        Some(d) if d == spec.sha256.as_bytes() => return Ok(Checked::Verified),
        Some(d) if store.binding().is_some() => d,
        _ if size > hash_max => return Ok(Checked::SizeOnly),
        _ => store.digest(app, key.as_str(), size).await?,
    };
    check_digest(&digest, spec)?;
    Ok(Checked::Verified)
}

/// The largest object `complete` reads whole, in one request, rather than HEAD, hash-reading
/// GET and ranged sniff GET: small files are most of a many-file upload, and each storage
/// request costs a round trip; 1 MiB is held in memory without concern.
const READ_WHOLE_MAX: u64 = 1 << 20;

/// As [`verify_stored`] for an object written by one PUT, and answers the object's leading
/// bytes (at most [`validate::SNIFF_LEN`]) for the magic-number check. An object of at most
/// [`READ_WHOLE_MAX`] bytes is read once, whatever the bucket's policy (one request either
/// way, and it brings the leading bytes), and its size, digest and leading bytes all come from
/// that read (R2's verified checksum still preferred to hashing, as [`Store::head`] says).
pub(crate) async fn verify_and_sniff(
    app: &App,
    store: &Store,
    spec: &FileSpec,
) -> ApiResult<Vec<u8>> {
    let key = spec.key();
    if spec.size > READ_WHOLE_MAX {
        verify_stored(app, store, spec, Written::OnePut).await?;
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
