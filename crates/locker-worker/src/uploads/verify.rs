//! The scheduled check of uploads in parts too large to hash within their `complete`
//! (`LOCKER_VERIFY_INLINE_MAX`): such an upload is `verifying` (no blob, no file, so nothing
//! to download and no dedup hit) until a cron run hashes its stored object and then commits it
//! exactly as an inline complete would, or, for wrong bytes, deletes them and aborts it.

use locker_core::api::{Operation, UploadState};

use super::commit::commit;
use super::data::{verify_stored, Written};
use super::multipart::COMPLETION_LOCK_MS;
use super::FileSpec;
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{Blobs, Parts, UploadRow, Uploads};
use crate::store::Store;

/// Uploads one cron run checks at most: each may be gigabytes read and hashed, and a run has
/// one Worker invocation's limits; the next run takes the rest.
const VERIFY_BATCH: u64 = 2;

/// Checks up to [`VERIFY_BATCH`] verifying uploads; returns how many it ended (committed or
/// refused).
pub(crate) async fn verify_deferred(app: &App) -> ApiResult<u64> {
    let stale = app.now_ms.saturating_sub(COMPLETION_LOCK_MS);
    let rows = app
        .registry()
        .verifying_uploads(stale, VERIFY_BATCH)
        .await?;
    let mut ended = 0;
    for row in rows {
        // One upload's trouble (its bucket unreachable, say) must not stop the others.
        match verify_one(app, &row, stale).await {
            Ok(true) => ended += 1,
            Ok(false) => {}
            Err(e) => worker::console_error!("verify: upload {}: {}", row.id, e.message),
        }
    }
    Ok(ended)
}

/// Under the upload's lock (two overlapping runs never hash the same object), hashes the
/// stored object and commits or refuses. Any other failure frees the lock for the next run.
async fn verify_one(app: &App, row: &UploadRow, stale: u64) -> ApiResult<bool> {
    if !app.registry().lock_verification(&row.id, stale).await? {
        return Ok(false);
    }
    let outcome = check_and_end(app, row).await;
    if outcome.is_err() {
        if let Err(e) = app.registry().unlock_completion(&row.id).await {
            worker::console_error!("verify: unlock {}: {}", row.id, e.message);
        }
    }
    outcome
}

async fn check_and_end(app: &App, row: &UploadRow) -> ApiResult<bool> {
    let spec = FileSpec::from_row(row)?;
    let mut log = LogEntry {
        operation: Some(Operation::Complete),
        tenant: Some(row.tenant.clone()),
        bucket_id: Some(row.bucket_id.clone()),
        sha256: Some(row.sha256.clone()),
        namespace: Some(row.namespace.clone()),
        path: Some(row.path.clone()),
        ..LogEntry::default()
    };
    let store = Store::open(app, &row.bucket_id).await?;
    match verify_stored(app, &store, &spec, Written::InParts).await {
        Ok(()) => {
            log.bytes = spec.size;
            commit(app, &spec, &row.bucket_id, Some(&row.id), &mut log).await?;
            Ok(true)
        }
        // `complete` saw the object with its size: gone or another size now, it is not the
        // reserved bytes either.
        Err(e) if e.kind.is_wrong_bytes() || e.kind == ErrorKind::NotUploaded => {
            refuse(app, row, &store, &log, &e).await
        }
        Err(e) => Err(e),
    }
}

/// Wrong bytes: the upload ends `aborted` with a `failed` log row naming the refusal, and the
/// object goes. It sits at the key of the reserved SHA-256, so no verified blob can be those
/// bytes; the check of a verified blob only guards against deleting what another upload of the
/// right bytes committed meanwhile.
async fn refuse(
    app: &App,
    row: &UploadRow,
    store: &Store,
    log: &LogEntry,
    error: &ApiError,
) -> ApiResult<bool> {
    let record = log.record(app, Some(error));
    let closed = app
        .registry()
        .close_upload(
            &row.id,
            (UploadState::Verifying, UploadState::Aborted),
            Some(&record),
        )
        .await?;
    if !closed {
        return Ok(false);
    }
    worker::console_log!("verify: upload {} refused: {}", row.id, error.message);
    if app
        .registry()
        .verified_blob(&row.tenant, &row.sha256)
        .await?
        .is_none()
    {
        store.delete(app, &row.key).await?;
    }
    Ok(true)
}
