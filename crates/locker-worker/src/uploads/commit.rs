//! The upload flow's registry changes: commit verified bytes, close a reservation, release
//! bytes nothing uses. The batches themselves are the registry's; here is what follows them in
//! storage.

use locker_core::api::UploadState;

use super::FileSpec;
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{Blobs, Committed, UploadRow, Uploads};

/// Deletes a blob's row and object once nothing of the tenant uses it: no file and no pending
/// reservation. The row goes first, conditionally, so two releases cannot both delete, and a
/// blob another file still uses is never touched.
pub(crate) async fn release_blob(app: &App, tenant: &str, sha256: &str) -> ApiResult<bool> {
    let Some(blob) = app.registry().blob(tenant, sha256).await? else {
        return Ok(false);
    };
    if !app.registry().release_blob(tenant, sha256).await? {
        return Ok(false);
    }
    // The key the Worker chose when it stored the bytes. A failed delete is retried by the
    // reconciler: the row is gone, so the bytes are no one's.
    crate::reconcile::delete_bytes(app, &blob.bucket_id, tenant, sha256, &blob.key).await;
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
/// one batch; then releases the blob the path pointed at before (the batch reads it), if
/// nothing else uses it.
pub(crate) async fn commit(
    app: &App,
    spec: &FileSpec,
    bucket_id: &str,
    upload_id: Option<&str>,
    log: &mut LogEntry,
) -> ApiResult<()> {
    let record = log.record(app, None);
    let outcome = app
        .registry()
        .commit(spec, bucket_id, upload_id, &record)
        .await?;
    settle(app, spec, outcome, log).await
}

/// What follows a commit the registry ran with `log`'s row: the refusal of one that wrote
/// nothing (closed meanwhile: the refusal gets its own log row) or wrote no file, else the
/// release of the blob the path pointed at before, if nothing else uses it.
pub(super) async fn settle(
    app: &App,
    spec: &FileSpec,
    outcome: Committed,
    log: &mut LogEntry,
) -> ApiResult<()> {
    let old = match outcome {
        Committed::Closed => {
            return Err(ApiError::new(
                ErrorKind::UploadClosed,
                "this upload was closed while it was being completed",
            ))
        }
        Committed::NoFile => {
            log.written = true;
            return Err(ApiError::new(
                ErrorKind::Internal,
                "the file row was not written",
            ));
        }
        Committed::Done { replaced } => {
            log.written = true;
            replaced
        }
    };
    release_replaced(app, spec, old).await
}

/// Deletes the object at `key` in bucket `bucket_id` unless a blob row (the bytes are
/// someone's) or a pending reservation (someone is uploading them) claims these bytes of the
/// tenant. A failed delete is retried by the reconciler, which checks the claim again first.
pub(crate) async fn remove_unclaimed(
    app: &App,
    bucket_id: &str,
    tenant: &str,
    sha256: &str,
    key: &str,
) -> ApiResult<()> {
    if !app
        .registry()
        .blob_claimed(tenant, sha256, Some(bucket_id))
        .await?
    {
        crate::reconcile::delete_bytes(app, bucket_id, tenant, sha256, key).await;
    }
    Ok(())
}

/// Ends a pending reservation as `state` (`aborted`, `expired`), with `log` written only if it
/// did, and removes its bytes if nothing else needs them. `false`: it was no longer pending.
pub(super) async fn close(
    app: &App,
    row: &UploadRow,
    state: UploadState,
    log: Option<&LogEntry>,
) -> ApiResult<bool> {
    let record = log.map(|l| l.record(app, None));
    if !app
        .registry()
        .close_upload(&row.id, (UploadState::Pending, state), record.as_ref())
        .await?
    {
        return Ok(false);
    }
    // An upload in parts also ends in storage, so no part stays billed.
    super::multipart::end_in_storage(app, row).await;
    remove_unclaimed(app, &row.bucket_id, &row.tenant, &row.sha256, &row.key).await?;
    Ok(true)
}

/// Marks a pending reservation aborted and removes its bytes if nothing else needs them.
pub(super) async fn discard(app: &App, row: &UploadRow) -> ApiResult<bool> {
    close(app, row, UploadState::Aborted, None).await
}
