//! The upload flow: reserve (or dedup), the data-plane PUT, complete, abort.
//!
//! Invariant: a `files` row only ever points at a `blobs` row whose bytes this Worker verified
//! (size and SHA-256 of the stored object) and whose bucket is registered; every change to the
//! registry is one D1 batch, and the access-log row of a commit is in that same batch.

use locker_core::request::{self, ReserveFields};
use locker_core::s3::PutSpec;
use locker_core::sign::PutClaims;
use locker_core::validate;
use locker_core::{LockerRef, LogicalPath, Namespace, ObjectKey, Sha256Hex, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use worker::{Conditional, HttpMetadata, Request};

use crate::app::{n, opt, random_id, s, App};
use crate::auth::Principal;
use crate::buckets;
use crate::error::{ApiError, ApiResult};
use crate::log::LogEntry;
use crate::store::Store;

/// `POST /v1/uploads`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub namespace: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    #[serde(default)]
    pub filename: Option<String>,
    /// Lifetime of the signed URL, seconds (1 to [`request::PUT_TTL_S`], the default).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A reservation as stored.
#[derive(Deserialize, Serialize, Clone)]
pub struct UploadRow {
    pub id: String,
    pub tenant: String,
    pub namespace: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub filename: Option<String>,
    pub bucket_id: String,
    pub key: String,
    pub state: String,
    pub expires_at: u64,
}

/// What a file row will hold, validated.
pub struct FileSpec {
    pub tenant: Tenant,
    pub namespace: Namespace,
    pub path: LogicalPath,
    pub sha256: Sha256Hex,
    pub size: u64,
    pub content_type: String,
    pub filename: String,
}

impl FileSpec {
    pub fn locker_ref(&self) -> LockerRef {
        LockerRef::new(self.namespace.clone(), self.path.clone())
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::for_blob(&self.tenant, &self.sha256)
    }

    fn from_row(row: &UploadRow) -> ApiResult<Self> {
        let path = LogicalPath::parse(&row.path)?;
        Ok(Self {
            tenant: Tenant::parse(&row.tenant)?,
            namespace: Namespace::parse(&row.namespace)?,
            filename: row
                .filename
                .clone()
                .unwrap_or_else(|| path.file_name().to_owned()),
            path,
            sha256: Sha256Hex::parse(&row.sha256)?,
            size: row.size,
            content_type: row.content_type.clone(),
        })
    }

    fn log_into(&self, log: &mut LogEntry) {
        log.tenant = Some(self.tenant.to_string());
        log.namespace = Some(self.namespace.to_string());
        log.path = Some(self.path.to_string());
        log.sha256 = Some(self.sha256.to_string());
    }
}

/// Validates the whole reservation request, its fields and then the caller's scopes and
/// limits, before anything happens. Returns the file and the signed URL's lifetime.
pub fn validate_request(
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

#[derive(Deserialize)]
struct BlobRow {
    size: u64,
    #[serde(default)]
    bucket_id: String,
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct ShaRow {
    sha256: String,
}

/// SQL condition: reservation `?{first}` went to `state` at `?{first + 1}` (the time of the
/// batch that changed it), so a statement later in that batch runs only if the change
/// happened.
fn reservation_is(state: &'static str, first: usize) -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM uploads WHERE id = ?{first} AND state = '{state}' \
         AND finished_at = ?{})",
        first + 1
    )
}

/// `args` with [`reservation_is`] `committed` appended for `guard` (reservation id, batch
/// time): the condition and the arguments, or no condition at all.
fn guarded(args: &[JsValue], guard: Option<(&str, u64)>) -> (String, Vec<JsValue>) {
    let mut all = args.to_vec();
    let Some((id, at)) = guard else {
        return (String::new(), all);
    };
    let condition = reservation_is("committed", all.len() + 1);
    all.extend([s(id), n(at)]);
    (condition, all)
}

/// The upsert of a file row. It only writes when a verified blob with the same size exists, so
/// a file can never point at unverified bytes, even if the blob vanished since it was read;
/// with `guard`, only when that reservation was committed in this batch (see [`commit`]).
fn upsert_file(
    app: &App,
    spec: &FileSpec,
    guard: Option<(&str, u64)>,
) -> ApiResult<worker::D1PreparedStatement> {
    let args: [JsValue; 8] = [
        s(spec.tenant.as_str()),
        s(spec.namespace.as_str()),
        s(spec.path.as_str()),
        s(&spec.sha256.to_string()),
        n(spec.size),
        s(&spec.content_type),
        s(&spec.filename),
        n(app.now_ms),
    ];
    let (condition, args) = guarded(&args, guard);
    app.stmt(
        &format!(
            "INSERT INTO files (tenant, namespace, path, sha256, bucket_id, size, content_type, \
             filename, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, b.bucket_id, ?5, ?6, ?7, ?8, ?8 FROM blobs b \
             WHERE b.tenant = ?1 AND b.sha256 = ?4 AND b.verified = 1 AND b.size = ?5 \
               AND b.bucket_id IN (SELECT id FROM buckets){condition} \
             ON CONFLICT (tenant, namespace, path) DO UPDATE SET sha256 = excluded.sha256, \
               bucket_id = excluded.bucket_id, size = excluded.size, \
               content_type = excluded.content_type, filename = excluded.filename, \
               updated_at = excluded.updated_at"
        ),
        &args,
    )
}

/// The sha256 the path points at now, if any (to release it after an overwrite).
pub(crate) async fn current_sha(app: &App, spec: &FileSpec) -> ApiResult<Option<String>> {
    let row: Option<ShaRow> = app
        .first(
            "SELECT sha256 FROM files WHERE tenant = ?1 AND namespace = ?2 AND path = ?3",
            &[
                s(spec.tenant.as_str()),
                s(spec.namespace.as_str()),
                s(spec.path.as_str()),
            ],
        )
        .await?;
    Ok(row.map(|r| r.sha256))
}

/// Deletes a blob's row and object once nothing of the tenant uses it: no file and no pending
/// reservation. The row goes first, conditionally, so two releases cannot both delete, and a
/// blob another file still uses is never touched.
pub async fn release_blob(app: &App, tenant: &str, sha256: &str) -> ApiResult<bool> {
    let Some(blob) = app
        .first::<BlobRow>(
            "SELECT size, bucket_id, key FROM blobs WHERE tenant = ?1 AND sha256 = ?2",
            &[s(tenant), s(sha256)],
        )
        .await?
    else {
        return Ok(false);
    };
    let changes = app
        .batch(vec![app.stmt(
            "DELETE FROM blobs WHERE tenant = ?1 AND sha256 = ?2 \
             AND NOT EXISTS (SELECT 1 FROM files WHERE tenant = ?1 AND sha256 = ?2) \
             AND NOT EXISTS (SELECT 1 FROM uploads WHERE tenant = ?1 AND sha256 = ?2 \
                             AND state = 'pending')",
            &[s(tenant), s(sha256)],
        )?])
        .await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        return Ok(false);
    }
    // The key the Worker chose when it stored the bytes.
    Store::open(app, &blob.bucket_id)
        .await?
        .delete(app, &blob.key)
        .await?;
    Ok(true)
}

/// After a path moved from `old` to another blob, releases `old` if nothing uses it.
async fn release_replaced(app: &App, spec: &FileSpec, old: Option<String>) -> ApiResult<()> {
    if let Some(old) = old.filter(|o| *o != spec.sha256.to_string()) {
        release_blob(app, spec.tenant.as_str(), &old).await?;
    }
    Ok(())
}

/// The tenant's verified bytes with a SHA-256 (the query-plan test runs this string).
pub(crate) const DEDUP_SQL: &str =
    "SELECT size, bucket_id FROM blobs WHERE tenant = ?1 AND sha256 = ?2 AND verified = 1";

/// Tries to satisfy the request from bytes the tenant already stored. `Ok(None)`: not stored.
pub async fn try_dedup(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    log: &mut LogEntry,
) -> ApiResult<Option<Value>> {
    let blob: Option<BlobRow> = app
        .first(
            DEDUP_SQL,
            &[s(spec.tenant.as_str()), s(&spec.sha256.to_string())],
        )
        .await?;
    let Some(blob) = blob else {
        return Ok(None);
    };
    if blob.size != spec.size {
        return Err(ApiError::bad_request(
            "size_mismatch",
            "these bytes are already stored with another size: sha256 or size is wrong",
        ));
    }
    // The same bytes may be declared as another type than before: check it against them.
    let (_, types) = who.limits(app);
    let store = Store::open(app, &blob.bucket_id).await?;
    validate::magic_matches(
        &spec.content_type,
        &store.sniff(app, spec.key().as_str(), blob.size).await?,
        &types,
    )?;
    let old = current_sha(app, spec).await?;
    log.operation = Some("dedup");
    log.bucket_id = Some(blob.bucket_id.clone());
    spec.log_into(log);
    let changes = app
        .batch(vec![
            upsert_file(app, spec, None)?,
            log.statement(app, None)?,
        ])
        .await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        // The blob was released between the read and the write: upload the bytes instead.
        return Ok(None);
    }
    log.written = true;
    release_replaced(app, spec, old).await?;
    Ok(Some(json!({
        "status": "deduplicated",
        "deduplicated": true,
        "ref": spec.locker_ref().to_string(),
        "sha256": spec.sha256.to_string(),
        "size": spec.size,
    })))
}

/// `POST /v1/uploads`: dedup answer, or a reservation with a signed data-plane PUT URL.
pub async fn reserve(
    app: &App,
    who: &Principal,
    body: ReserveRequest,
    log: &mut LogEntry,
) -> ApiResult<(u16, Value)> {
    log.namespace = Some(body.namespace.clone());
    log.path = Some(body.path.clone());
    // Every field, expires_in included, is valid before a dedup can answer.
    let (spec, ttl) = validate_request(app, who, &body)?;
    spec.log_into(log);
    if let Some(answer) = try_dedup(app, who, &spec, log).await? {
        return Ok((200, answer));
    }
    let (bucket_id, store) = buckets::target(app, &spec.tenant, &spec.namespace).await?;
    // One PUT of the whole file: through this Worker up to its body limit, straight to storage
    // up to S3's single-PUT limit.
    validate::size_within(spec.size, store.max_single_put())?;
    let id = random_id("up_")?;
    let expires_at = app.now_s() + ttl;
    let args: [JsValue; 14] = [
        s(&id),
        s(spec.tenant.as_str()),
        s(spec.namespace.as_str()),
        s(spec.path.as_str()),
        s(&spec.sha256.to_string()),
        n(spec.size),
        s(&spec.content_type),
        s(&spec.filename),
        s(&bucket_id),
        s(spec.key().as_str()),
        s(&who.key_id),
        n(app.now_ms),
        n(expires_at * 1000),
        opt(None),
    ];
    log.operation = Some("reserve");
    log.bucket_id = Some(bucket_id.clone());
    // Straight to storage (s3 transport), or through this Worker's data plane (R2 binding).
    let key = spec.key();
    let direct = store.presign_put(
        app,
        &PutSpec {
            key: key.as_str(),
            size: spec.size,
            content_type: &spec.content_type,
            sha256: &spec.sha256,
        },
        ttl,
    )?;
    app.batch(vec![
        buckets::register_default(app)?,
        app.stmt(
            "INSERT INTO uploads (id, tenant, namespace, path, sha256, size, content_type, \
             filename, bucket_id, key, key_id, created_at, expires_at, multipart_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            &args,
        )?,
        log.statement(app, None)?,
    ])
    .await?;
    log.written = true;
    let (url, headers) = match direct {
        Some(p) => (
            p.url,
            p.headers.into_iter().map(|(k, v)| (k, json!(v))).collect(),
        ),
        None => {
            let token = app.signer.sign(&PutClaims {
                uid: id.clone(),
                sha256: spec.sha256,
                size: spec.size,
                ct: spec.content_type.clone(),
                exp: expires_at,
            });
            let mut headers = serde_json::Map::new();
            headers.insert("content-type".into(), json!(spec.content_type));
            (format!("{}/v1/data/{id}?sig={token}", app.origin), headers)
        }
    };
    Ok((
        201,
        json!({
            "status": "upload",
            "upload_id": id,
            "method": "PUT",
            "url": url,
            "headers": headers,
            "expires_at": expires_at,
            "ref": spec.locker_ref().to_string(),
        }),
    ))
}

async fn load_upload(app: &App, id: &str) -> ApiResult<Option<UploadRow>> {
    app.first(
        "SELECT id, tenant, namespace, path, sha256, size, content_type, filename, bucket_id, \
         key, state, expires_at FROM uploads WHERE id = ?1",
        &[s(id)],
    )
    .await
}

/// A reservation of the caller's tenant; another tenant's answers exactly like a missing one.
async fn own_upload(app: &App, who: &Principal, id: &str) -> ApiResult<UploadRow> {
    let tenant = who.tenant()?;
    match load_upload(app, id).await? {
        Some(row) if row.tenant == tenant.as_str() => Ok(row),
        _ => Err(ApiError::not_found("no such upload")),
    }
}

/// `PUT /v1/data/{id}?sig=`: the signature is the credential. Streams the body into R2 with
/// the expected SHA-256 and a create-only condition, so R2 itself refuses wrong bytes and a
/// second write.
pub async fn data_put(
    app: &App,
    req: &Request,
    id: &str,
    sig: &str,
    log: &mut LogEntry,
) -> ApiResult<(u16, Value)> {
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
    if row.state != "pending" {
        return Err(ApiError::conflict(
            "upload_closed",
            format!("this upload is {}; ask for a new URL", row.state),
        ));
    }
    if claims.sha256 != spec.sha256 || claims.size != spec.size || claims.ct != spec.content_type {
        return Err(ApiError::forbidden(
            "the signature does not match this request",
        ));
    }
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    if content_type != spec.content_type {
        return Err(ApiError::bad_request(
            "content_type_mismatch",
            format!("Content-Type must be {}", spec.content_type),
        ));
    }
    let length = req
        .headers()
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok());
    match length {
        None => {
            return Err(ApiError::new(
                411,
                "length_required",
                "send Content-Length (chunked bodies are refused)",
            ))
        }
        Some(len) if len != spec.size => {
            return Err(ApiError::bad_request(
                "size_mismatch",
                format!(
                    "the body is {len} bytes; this URL is for exactly {}",
                    spec.size
                ),
            ))
        }
        Some(_) => {}
    }
    let data = body_data(req, spec.size);
    log.operation = Some("upload");
    let Some(bucket) = Store::open(app, &row.bucket_id).await?.binding().cloned() else {
        return Err(ApiError::conflict(
            "direct_upload",
            "this upload goes straight to storage, not through the Worker",
        ));
    };
    if store(&bucket, &spec, data).await? {
        log.bytes = spec.size;
        Ok((201, json!({ "status": "stored", "size": spec.size })))
    } else {
        Ok((200, json!({ "status": "exists", "size": spec.size })))
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
                Err(ApiError::bad_request(
                    "sha256_mismatch",
                    "the body's SHA-256 is not the expected one; nothing was stored",
                ))
            } else {
                Err(e.into())
            }
        }
    }
}

/// Size and SHA-256 of the stored object: one HEAD, and the bytes hashed only where storage
/// did not verify a checksum itself (see [`Store::head`]).
pub(crate) async fn verify_stored(app: &App, store: &Store, spec: &FileSpec) -> ApiResult<()> {
    let key = spec.key();
    let Some((size, checksum)) = store.head(app, key.as_str()).await? else {
        return Err(ApiError::conflict(
            "not_uploaded",
            "no bytes were uploaded for this reservation yet",
        ));
    };
    if size != spec.size {
        return Err(ApiError::new(
            422,
            "size_mismatch",
            format!("stored {size} bytes, expected {}", spec.size),
        ));
    }
    let digest = match checksum {
        Some(d) => d,
        None => store.digest(app, key.as_str(), size).await?,
    };
    if digest.as_slice() != spec.sha256.as_bytes() {
        return Err(ApiError::new(
            422,
            "sha256_mismatch",
            "the stored bytes do not have the reserved SHA-256",
        ));
    }
    Ok(())
}

fn committed_answer(spec: &FileSpec) -> Value {
    json!({
        "status": "complete",
        "deduplicated": false,
        "ref": spec.locker_ref().to_string(),
        "sha256": spec.sha256.to_string(),
        "size": spec.size,
    })
}

/// `POST /v1/uploads/{id}/complete`: verify the stored bytes, then commit blob + file + log in
/// one batch. Idempotent: completing a committed upload answers the same ref again.
pub async fn complete(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // Completing writes the file: the same right as reserving it, on its namespace and path.
    who.require_write_path(&spec.namespace, &spec.path)?;
    log.operation = Some("complete");
    match row.state.as_str() {
        "committed" => return Ok(committed_answer(&spec)),
        "pending" => {}
        other => {
            return Err(ApiError::conflict(
                "upload_closed",
                format!("this upload is {other}"),
            ))
        }
    }
    let store = Store::open(app, &row.bucket_id).await?;
    if let Err(e) = verify_stored(app, &store, &spec).await {
        if e.status == 422 {
            // Wrong bytes were stored (an S3 server may keep them even after refusing their
            // checksum): the reservation ends here and takes them back.
            discard(app, &row).await?;
        }
        return Err(e);
    }
    let (_, types) = who.limits(app);
    if let Err(e) = validate::magic_matches(
        &spec.content_type,
        &store.sniff(app, spec.key().as_str(), spec.size).await?,
        &types,
    ) {
        discard(app, &row).await?;
        return Err(e.into());
    }
    log.bytes = spec.size;
    match commit(app, &spec, &row.bucket_id, Some(id), log).await {
        // Closed meanwhile: by a concurrent complete of the same upload (same answer), or by
        // an abort or the expiry sweep (refused, nothing written).
        Err(e) if e.code == "upload_closed" => match load_upload(app, id).await? {
            Some(r) if r.state == "committed" => Ok(committed_answer(&spec)),
            _ => Err(e),
        },
        Err(e) => Err(e),
        Ok(()) => Ok(committed_answer(&spec)),
    }
}

/// Commits verified bytes: blob (verified) + file + the reservation's state + the log row, in
/// one batch; then releases the blob the path pointed at before, if nothing else uses it.
pub async fn commit(
    app: &App,
    spec: &FileSpec,
    bucket_id: &str,
    upload_id: Option<&str>,
    log: &mut LogEntry,
) -> ApiResult<()> {
    let old = current_sha(app, spec).await?;
    let blob_args: [JsValue; 7] = [
        s(spec.tenant.as_str()),
        s(&spec.sha256.to_string()),
        s(bucket_id),
        s(spec.key().as_str()),
        n(spec.size),
        s(&spec.content_type),
        n(app.now_ms),
    ];
    // With a reservation, the batch first closes it, and writes the blob and the file only if
    // that worked: a reservation aborted or expired meanwhile (whose bytes may be deleted
    // already) commits nothing.
    let guard = upload_id.map(|id| (id, app.now_ms));
    let mut statements = Vec::new();
    if let Some(id) = upload_id {
        statements.push(app.stmt(
            "UPDATE uploads SET state = 'committed', finished_at = ?2 \
             WHERE id = ?1 AND state = 'pending'",
            &[s(id), n(app.now_ms)],
        )?);
    }
    let closed = statements.len();
    let (blob_guard, blob_args) = guarded(&blob_args, guard);
    statements.extend([
        buckets::register_default(app)?,
        app.stmt(
            &format!(
                "INSERT INTO blobs (tenant, sha256, bucket_id, key, size, content_type, \
                 verified, created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7 WHERE 1{blob_guard} \
                 ON CONFLICT (tenant, sha256) DO UPDATE SET verified = 1"
            ),
            &blob_args,
        )?,
        upsert_file(app, spec, guard)?,
        match guard {
            Some((id, at)) => log.statement_where(
                app,
                None,
                &reservation_is("committed", LogEntry::ARGS + 1),
                &[s(id), n(at)],
            )?,
            None => log.statement(app, None)?,
        },
    ]);
    let changes = app.batch(statements).await?;
    if closed == 1 && changes.first().copied().unwrap_or(0) == 0 {
        // Nothing was written, the log row neither: the refusal gets its own.
        return Err(ApiError::conflict(
            "upload_closed",
            "this upload was closed while it was being completed",
        ));
    }
    log.written = true;
    if changes.get(closed + 2).copied().unwrap_or(0) == 0 {
        return Err(ApiError::new(
            500,
            "internal",
            "the file row was not written",
        ));
    }
    release_replaced(app, spec, old).await
}

/// Deletes the object at `key` unless a blob row (the bytes are someone's) or a pending
/// reservation (someone is uploading them) claims these bytes of the tenant.
pub(crate) async fn remove_unclaimed(
    app: &App,
    store: &Store,
    tenant: &str,
    sha256: &str,
    key: &str,
) -> ApiResult<()> {
    let blob: Option<BlobRow> = app
        .first(
            "SELECT size FROM blobs WHERE tenant = ?1 AND sha256 = ?2",
            &[s(tenant), s(sha256)],
        )
        .await?;
    let pending: Option<ShaRow> = app
        .first(
            "SELECT sha256 FROM uploads WHERE tenant = ?1 AND sha256 = ?2 \
             AND state = 'pending' LIMIT 1",
            &[s(tenant), s(sha256)],
        )
        .await?;
    if blob.is_none() && pending.is_none() {
        store.delete(app, key).await?;
    }
    Ok(())
}

/// Reservations the scheduled sweep expires at most per run (a run stays well inside a
/// Worker's limits; the next run takes the rest).
const SWEEP_BATCH: u64 = 100;

/// Pending reservations past `?1`, oldest first (the query-plan test runs this string).
pub(crate) const SWEEP_SQL: &str =
    "SELECT id, tenant, namespace, path, sha256, size, content_type, filename, \
     bucket_id, key, state, expires_at FROM uploads \
     WHERE state = 'pending' AND expires_at < ?1 ORDER BY expires_at LIMIT ?2";

/// The scheduled sweep: a pending reservation whose URL expired more than the grace period ago
/// (`LOCKER_COMPLETE_GRACE_S`) ends as `expired`, with its access-log row in the same batch,
/// and its bytes are deleted unless a blob or another pending reservation claims them. A
/// complete racing the sweep loses cleanly: [`commit`] writes nothing for a closed
/// reservation. Returns how many expired.
pub async fn sweep_expired(app: &App) -> ApiResult<u64> {
    let grace_s = app
        .var(crate::bindings::COMPLETE_GRACE_S, "3600")
        .parse::<u64>()
        .unwrap_or(3600);
    let cutoff = app.now_ms.saturating_sub(grace_s.saturating_mul(1000));
    let rows: Vec<UploadRow> = app.all(SWEEP_SQL, &[n(cutoff), n(SWEEP_BATCH)]).await?;
    let mut expired = 0;
    for row in rows {
        // One reservation's trouble (its bucket unreachable, say) must not stop the others.
        match expire(app, &row).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(e) => worker::console_error!("sweep: upload {}: {}", row.id, e.message),
        }
    }
    Ok(expired)
}

/// Expires one reservation if it is still pending (its log row in the same batch), then
/// removes its bytes unless something claims them. A failed removal leaves them in storage.
async fn expire(app: &App, row: &UploadRow) -> ApiResult<bool> {
    let log = LogEntry {
        operation: Some("expire"),
        tenant: Some(row.tenant.clone()),
        bucket_id: Some(row.bucket_id.clone()),
        sha256: Some(row.sha256.clone()),
        namespace: Some(row.namespace.clone()),
        path: Some(row.path.clone()),
        ..LogEntry::default()
    };
    let logged = log.statement_where(
        app,
        None,
        &reservation_is("expired", LogEntry::ARGS + 1),
        &[s(&row.id), n(app.now_ms)],
    )?;
    close(app, row, "expired", vec![logged]).await
}

/// Ends a pending reservation as `state` (`aborted`, `expired`), with `also` in the same batch,
/// and removes its bytes if nothing else needs them. `false`: it was no longer pending.
async fn close(
    app: &App,
    row: &UploadRow,
    state: &'static str,
    also: Vec<worker::D1PreparedStatement>,
) -> ApiResult<bool> {
    let mut statements = vec![app.stmt(
        "UPDATE uploads SET state = ?3, finished_at = ?2 WHERE id = ?1 AND state = 'pending'",
        &[s(&row.id), n(app.now_ms), s(state)],
    )?];
    statements.extend(also);
    let changes = app.batch(statements).await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        return Ok(false);
    }
    let store = Store::open(app, &row.bucket_id).await?;
    remove_unclaimed(app, &store, &row.tenant, &row.sha256, &row.key).await?;
    Ok(true)
}

/// Marks a pending reservation aborted and removes its bytes if nothing else needs them.
async fn discard(app: &App, row: &UploadRow) -> ApiResult<bool> {
    close(app, row, "aborted", Vec::new()).await
}

/// `DELETE /v1/uploads/{id}`: abort a pending reservation.
pub async fn abort(app: &App, who: &Principal, id: &str, log: &mut LogEntry) -> ApiResult<Value> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // Aborting ends someone's upload to this path: the right to write there, nothing less.
    who.require_write_path(&spec.namespace, &spec.path)?;
    log.operation = Some("abort");
    if row.state != "pending" || !discard(app, &row).await? {
        return Err(ApiError::conflict(
            "upload_closed",
            format!("this upload is {}", row.state),
        ));
    }
    Ok(json!({ "status": "aborted", "upload_id": id }))
}
