//! `POST /v1/uploads`: validate, dedup from stored bytes, or reserve an upload.

use super::commit::release_replaced;
use super::{FileSpec, ReserveRequest};
use crate::app::{random_id, App};
use crate::auth::Principal;
use crate::buckets;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{BlobRow, Blobs, Files, NewUpload, Uploads};
use crate::store::Store;
use locker_core::api::Operation;
use locker_core::api::{Deduplicated, Reserved, UploadPlan};
use locker_core::multipart;
use locker_core::request::{self, ReserveFields};
use locker_core::sign::PutClaims;
use locker_core::validate;

/// Validates the whole reservation request, its fields and then the caller's scopes and
/// limits, before anything happens. Returns the file and the signed URL's lifetime.
pub(crate) fn validate_request(
    app: &App,
    who: &Principal,
    body: &ReserveRequest,
) -> ApiResult<(FileSpec, u64)> {
    let tenant = who.tenant()?.clone();
    let valid = request::reserve(&ReserveFields {
        namespace: &body.namespace,
        path: &body.path,
        sha256: &body.sha256,
        size: body.size,
        content_type: &body.content_type,
        filename: body.filename.as_deref(),
        expires_in: body.expires_in,
    })?;
    who.require_write_path(&valid.namespace, &valid.path)?;
    who.check_content(app, valid.size, &valid.content_type)?;
    let spec = FileSpec {
        tenant,
        namespace: valid.namespace,
        path: valid.path,
        sha256: valid.sha256,
        size: valid.size,
        content_type: valid.content_type,
        filename: valid.filename,
    };
    Ok((spec, valid.ttl))
}

/// Tries to satisfy the request from bytes the tenant already stored. `Ok(None)`: not stored.
pub(crate) async fn try_dedup(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    log: &mut LogEntry,
) -> ApiResult<Option<Deduplicated>> {
    let blob = app
        .registry()
        .verified_blob(spec.tenant.as_str(), &spec.sha256.to_string())
        .await?;
    let Some(blob) = blob else {
        return Ok(None);
    };
    dedup_onto(app, who, spec, &blob, log).await
}

/// Points the file at `blob`, the tenant's verified bytes with the spec's SHA-256, once they
/// fit the request (size, declared type). `Ok(None)`: the blob went meanwhile.
pub(crate) async fn dedup_onto(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    blob: &BlobRow,
    log: &mut LogEntry,
) -> ApiResult<Option<Deduplicated>> {
    let store = Store::open(app, &blob.bucket_id).await?;
    dedup_fits(app, who, spec, blob, &store).await?;
    dedup_log(spec, blob, log);
    let linked = app
        .registry()
        .link_file(spec, &log.record(app, None))
        .await?;
    dedup_linked(app, spec, linked, log).await
}

/// Whether `blob` (in `store`) can serve `spec`: the same size, and bytes that fit the
/// declared type (the same bytes may be declared as another type than before).
pub(crate) async fn dedup_fits(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    blob: &BlobRow,
    store: &Store,
) -> ApiResult<()> {
    if blob.size != spec.size {
        return Err(ApiError::new(
            ErrorKind::SizeMismatch,
            "these bytes are already stored with another size: sha256 or size is wrong",
        ));
    }
    let (_, types) = who.limits(app);
    validate::magic_matches(
        &spec.content_type,
        &store.sniff(app, spec.key().as_str(), blob.size).await?,
        &types,
    )?;
    Ok(())
}

/// Names a dedup onto `blob` in its log entry, before the row is written.
pub(crate) fn dedup_log(spec: &FileSpec, blob: &BlobRow, log: &mut LogEntry) {
    log.operation = Some(Operation::Dedup);
    log.bucket_id = Some(blob.bucket_id.clone());
    spec.log_into(log);
}

/// The answer of a dedup once the registry linked the file (`Some(replaced)`) or found the
/// blob gone (`None`: upload the bytes instead); a replaced blob is released.
pub(crate) async fn dedup_linked(
    app: &App,
    spec: &FileSpec,
    linked: Option<Option<String>>,
    log: &mut LogEntry,
) -> ApiResult<Option<Deduplicated>> {
    let Some(old) = linked else {
        return Ok(None);
    };
    log.written = true;
    release_replaced(app, spec, old).await?;
    Ok(Some(Deduplicated {
        deduplicated: true,
        locker_ref: spec.locker_ref().to_string(),
        sha256: spec.sha256.to_string(),
        size: spec.size,
    }))
}

/// `POST /v1/uploads`: dedup answer, or a reservation with a signed data-plane PUT URL.
pub(crate) async fn reserve(
    app: &App,
    who: &Principal,
    body: ReserveRequest,
    log: &mut LogEntry,
) -> ApiResult<Reserved> {
    log.namespace = Some(body.namespace.clone());
    log.path = Some(body.path.clone());
    // Every field, expires_in included, is valid before a dedup can answer.
    let (spec, ttl) = validate_request(app, who, &body)?;
    spec.log_into(log);
    // The dedup's blob and the route of a new upload in one round trip: a dedup hit wastes
    // the route's one-row read, a new file saves a round trip to D1.
    let (blob, route) = app
        .registry()
        .reserve_lookup(
            spec.tenant.as_str(),
            &spec.sha256.to_string(),
            spec.namespace.as_str(),
        )
        .await?;
    if let Some(blob) = &blob {
        if let Some(answer) = dedup_onto(app, who, &spec, blob, log).await? {
            return Ok(Reserved::Deduplicated(answer));
        }
    }
    let (bucket_id, store) = buckets::routed(app, &spec.namespace, route).await?;
    let threshold = multipart::planned_threshold(
        crate::config::multipart_threshold(&app.env),
        store.one_request_free(),
    );
    if multipart::is_multipart(spec.size, body.multipart, threshold) {
        return super::multipart::reserve(app, who, &spec, ttl, (&bucket_id, &store), log).await;
    }
    let single = plan_single(app, who, &spec, ttl, &store)?;
    log.operation = Some(Operation::Reserve);
    log.bucket_id = Some(bucket_id.clone());
    app.registry()
        .reserve(&single.row(&spec, &bucket_id), &log.record(app, None))
        .await?;
    log.written = true;
    Ok(Reserved::Upload(single.plan))
}

/// A reservation of one PUT, decided but not written yet: its row's values and its answer.
pub(crate) struct SinglePut {
    id: String,
    key_id: String,
    expires_at: u64,
    pub(crate) plan: UploadPlan,
}

impl SinglePut {
    /// The row to write; nothing is reserved until it is.
    pub(crate) fn row<'a>(&'a self, spec: &'a FileSpec, bucket_id: &'a str) -> NewUpload<'a> {
        NewUpload {
            id: &self.id,
            spec,
            bucket_id,
            key_id: &self.key_id,
            expires_at_ms: self.expires_at * 1000,
            multipart_id: None,
            parts: None,
        }
    }
}

/// One PUT of the whole file: through this Worker up to its body limit, straight to storage
/// up to S3's single-PUT limit. Signs the URL; writes nothing.
pub(crate) fn plan_single(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    ttl: u64,
    store: &Store,
) -> ApiResult<SinglePut> {
    validate::size_within(spec.size, store.max_single_put())?;
    let id = random_id("up_")?;
    let expires_at = app.now_s() + ttl;
    // Straight to storage (s3 transport), or through this Worker's data plane (R2 binding).
    let key = spec.key();
    let direct = store.presign_put(app, &spec.put_spec(&key), ttl)?;
    let (url, headers) = match direct {
        Some(p) => (p.url, p.headers.into_iter().collect()),
        None => {
            let token = app.signer.sign(&PutClaims {
                uid: id.clone(),
                sha256: spec.sha256,
                size: spec.size,
                ct: spec.content_type.clone(),
                exp: expires_at,
            });
            let headers = [("content-type".to_owned(), spec.content_type.clone())].into();
            (format!("{}/v1/data/{id}?sig={token}", app.origin), headers)
        }
    };
    Ok(SinglePut {
        plan: UploadPlan {
            upload_id: id.clone(),
            method: "PUT".to_owned(),
            url,
            headers,
            expires_at,
            locker_ref: spec.locker_ref().to_string(),
        },
        id,
        key_id: who.key_id.clone(),
        expires_at,
    })
}
