//! The scheduled sweep: reservations nobody completed end as `expired`.

use locker_core::api::Operation;
use locker_core::api::UploadState;

use super::commit::close;
use crate::app::App;
use crate::error::ApiResult;
use crate::log::LogEntry;
use crate::registry::{UploadRow, Uploads};

/// Reservations the scheduled sweep expires at most per run (a run stays well inside a
/// Worker's limits; the next run takes the rest).
pub(super) const SWEEP_BATCH: u64 = 100;

/// The scheduled sweep: a pending reservation whose URL expired more than the grace period ago
/// (`LOCKER_COMPLETE_GRACE_S`) ends as `expired`, with its access-log row in the same batch,
/// and its bytes are deleted unless a blob or another pending reservation claims them. A
/// complete racing the sweep loses cleanly: [`commit`] writes nothing for a closed
/// reservation. Returns how many expired.
pub(crate) async fn sweep_expired(app: &App) -> ApiResult<u64> {
    let grace_s = crate::config::complete_grace_s(&app.env);
    let cutoff = app.now_ms.saturating_sub(grace_s.saturating_mul(1000));
    let rows = app.registry().expired_uploads(cutoff, SWEEP_BATCH).await?;
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
pub(super) async fn expire(app: &App, row: &UploadRow) -> ApiResult<bool> {
    let log = LogEntry {
        operation: Some(Operation::Expire),
        tenant: Some(row.tenant.clone()),
        bucket_id: Some(row.bucket_id.clone()),
        sha256: Some(row.sha256.clone()),
        namespace: Some(row.namespace.clone()),
        path: Some(row.path.clone()),
        ..LogEntry::default()
    };
    close(app, row, UploadState::Expired, Some(&log)).await
}
