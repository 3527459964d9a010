//! `POST /v1/uploads/{id}/complete` and `DELETE /v1/uploads/{id}`.

use locker_core::api::Operation;
use locker_core::api::UploadState;
use locker_core::api::{Abort, AbortStatus, Complete, CompleteStatus};
use locker_core::validate;

use super::commit::{commit, discard};
use super::data::verify_stored;
use super::{load_upload, own_upload, FileSpec};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::store::Store;

pub(super) fn committed_answer(spec: &FileSpec) -> Complete {
    Complete {
        status: CompleteStatus::Complete,
        deduplicated: false,
        locker_ref: spec.locker_ref().to_string(),
        sha256: spec.sha256.to_string(),
        size: spec.size,
    }
}

/// `POST /v1/uploads/{id}/complete`: verify the stored bytes, then commit blob + file + log in
/// one batch. Idempotent: completing a committed upload answers the same ref again.
pub(crate) async fn complete(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<Complete> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // Completing writes the file: the same right as reserving it, on its namespace and path.
    who.require_write_path(&spec.namespace, &spec.path)?;
    log.operation = Some(Operation::Complete);
    match row.state {
        UploadState::Committed => return Ok(committed_answer(&spec)),
        UploadState::Pending => {}
        other => {
            return Err(ApiError::new(
                ErrorKind::UploadClosed,
                format!("this upload is {}", other.as_str()),
            ))
        }
    }
    if row.multipart_id.is_some() {
        return super::multipart::complete(app, who, &row, &spec, log).await;
    }
    let store = Store::open(app, &row.bucket_id).await?;
    if let Err(e) = verify_stored(app, &store, &spec).await {
        if e.kind.is_wrong_bytes() {
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
        Err(e) if e.kind == ErrorKind::UploadClosed => match load_upload(app, id).await? {
            Some(r) if r.state == UploadState::Committed => Ok(committed_answer(&spec)),
            _ => Err(e),
        },
        Err(e) => Err(e),
        Ok(()) => Ok(committed_answer(&spec)),
    }
}

/// `DELETE /v1/uploads/{id}`: abort a pending reservation.
pub(crate) async fn abort(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<Abort> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // Aborting ends someone's upload to this path: the right to write there, nothing less.
    who.require_write_path(&spec.namespace, &spec.path)?;
    log.operation = Some(Operation::Abort);
    if row.state != UploadState::Pending || !discard(app, &row).await? {
        return Err(ApiError::new(
            ErrorKind::UploadClosed,
            format!("this upload is {}", row.state.as_str()),
        ));
    }
    Ok(Abort {
        status: AbortStatus::Aborted,
        upload_id: id.to_owned(),
    })
}
