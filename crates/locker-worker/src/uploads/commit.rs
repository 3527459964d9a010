//! The registry batches of the upload flow: commit verified bytes, close a reservation,
//! release bytes nothing uses.

use locker_core::api::UploadState;
use wasm_bindgen::JsValue;

use super::{BlobRow, FileSpec, ShaRow, UploadRow};
use crate::app::{n, s, App};
use crate::buckets;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::store::Store;

/// SQL condition: reservation `?{first}` went to `state` at `?{first + 1}` (the time of the
/// batch that changed it), so a statement later in that batch runs only if the change
/// happened.
pub(super) fn reservation_is(state: UploadState, first: usize) -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM uploads WHERE id = ?{first} AND state = '{}' \
         AND finished_at = ?{})",
        state.as_str(),
        first + 1
    )
}

/// `args` with [`reservation_is`] `committed` appended for `guard` (reservation id, batch
/// time): the condition and the arguments, or no condition at all.
pub(super) fn guarded(args: &[JsValue], guard: Option<(&str, u64)>) -> (String, Vec<JsValue>) {
    let mut all = args.to_vec();
    let Some((id, at)) = guard else {
        return (String::new(), all);
    };
    let condition = reservation_is(UploadState::Committed, all.len() + 1);
    all.extend([s(id), n(at)]);
    (condition, all)
}

/// The upsert of a file row. It only writes when a verified blob with the same size exists, so
/// a file can never point at unverified bytes, even if the blob vanished since it was read;
/// with `guard`, only when that reservation was committed in this batch (see [`commit`]).
pub(super) fn upsert_file(
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
pub(super) async fn current_sha(app: &App, spec: &FileSpec) -> ApiResult<Option<String>> {
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
pub(crate) async fn release_blob(app: &App, tenant: &str, sha256: &str) -> ApiResult<bool> {
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
pub(super) async fn release_replaced(
    app: &App,
    spec: &FileSpec,
    old: Option<String>,
) -> ApiResult<()> {
    if let Some(old) = old.filter(|o| *o != spec.sha256.to_string()) {
        release_blob(app, spec.tenant.as_str(), &old).await?;
    }
    Ok(())
}

/// Commits verified bytes: blob (verified) + file + the reservation's state + the log row, in
/// one batch; then releases the blob the path pointed at before, if nothing else uses it.
pub(crate) async fn commit(
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
                &reservation_is(UploadState::Committed, LogEntry::ARGS + 1),
                &[s(id), n(at)],
            )?,
            None => log.statement(app, None)?,
        },
    ]);
    let changes = app.batch(statements).await?;
    if closed == 1 && changes.first().copied().unwrap_or(0) == 0 {
        // Nothing was written, the log row neither: the refusal gets its own.
        return Err(ApiError::new(
            ErrorKind::UploadClosed,
            "this upload was closed while it was being completed",
        ));
    }
    log.written = true;
    if changes.get(closed + 2).copied().unwrap_or(0) == 0 {
        return Err(ApiError::new(
            ErrorKind::Internal,
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

/// Ends a pending reservation as `state` (`aborted`, `expired`), with `also` in the same batch,
/// and removes its bytes if nothing else needs them. `false`: it was no longer pending.
pub(super) async fn close(
    app: &App,
    row: &UploadRow,
    state: UploadState,
    also: Vec<worker::D1PreparedStatement>,
) -> ApiResult<bool> {
    let mut statements = vec![app.stmt(
        "UPDATE uploads SET state = ?3, finished_at = ?2 WHERE id = ?1 AND state = 'pending'",
        &[s(&row.id), n(app.now_ms), s(state.as_str())],
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
pub(super) async fn discard(app: &App, row: &UploadRow) -> ApiResult<bool> {
    close(app, row, UploadState::Aborted, Vec::new()).await
}
