//! `POST /v1/uploads/{id}/complete` and `DELETE /v1/uploads/{id}`.

use locker_core::api::Operation;
use locker_core::api::UploadState;
use locker_core::api::{Abort, AbortStatus, Complete, CompleteStatus};
use locker_core::validate;

use super::commit::{commit, discard};
use super::data::verify_and_sniff;
use super::{load_upload, own_upload, FileSpec};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::UploadRow;
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

/// The 202 of an upload whose object awaits the scheduled check (see [`super::verify`]).
pub(super) fn verifying_answer(spec: &FileSpec) -> Complete {
    Complete {
        status: CompleteStatus::Verifying,
        ..committed_answer(spec)
    }
}

/// The first steps of completing `row`, a reservation of the caller's tenant, before any
/// storage: its file (named in `log`), the scope check, and the answer of a reservation no
/// longer pending (the same again once committed or verifying; `upload_closed` once it
/// ended otherwise). `None`: it is pending, its bytes to check.
pub(super) fn start(
    who: &Principal,
    row: &UploadRow,
    log: &mut LogEntry,
) -> ApiResult<(FileSpec, Option<Complete>)> {
    let spec = FileSpec::from_row(row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // Completing writes the file: the same right as reserving it, on its namespace and path.
    who.require_write_path(&spec.namespace, &spec.path)?;
    log.operation = Some(Operation::Complete);
    let answer = match row.state {
        UploadState::Committed => committed_answer(&spec),
        UploadState::Verifying => verifying_answer(&spec),
        UploadState::Pending => return Ok((spec, None)),
        other => {
            return Err(ApiError::new(
                ErrorKind::UploadClosed,
                format!("this upload is {}", other.as_str()),
            ))
        }
    };
    Ok((spec, Some(answer)))
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
    let (spec, answered) = start(who, &row, log)?;
    if let Some(answer) = answered {
        return Ok(answer);
    }
    if row.multipart_id.is_some() {
        return super::multipart::complete(app, who, &row, &spec, log).await;
    }
    let store = Store::open(app, &row.bucket_id).await?;
    check_pending(app, who, &store, &row, &spec).await?;
    log.bytes = spec.size;
    match commit(app, &spec, &row.bucket_id, Some(id), log).await {
        Err(e) if e.kind == ErrorKind::UploadClosed => closed_meanwhile(app, id, &spec, e).await,
        Err(e) => Err(e),
        Ok(()) => Ok(committed_answer(&spec)),
    }
}

/// The checks `complete` runs on the stored bytes of a pending upload in one request: size
/// and SHA-256, then the magic number of its type. Bytes refused (wrong, or not of the type)
/// end the reservation: an S3 server may keep wrong bytes even after refusing their checksum,
/// and the discard takes them back.
pub(super) async fn check_pending(
    app: &App,
    who: &Principal,
    store: &Store,
    row: &UploadRow,
    spec: &FileSpec,
) -> ApiResult<()> {
    let head = match verify_and_sniff(app, store, spec).await {
        Ok(head) => head,
        Err(e) => {
            if e.kind.is_wrong_bytes() {
                discard(app, row).await?;
            }
            return Err(e);
        }
    };
    let (_, types) = who.limits(app);
    if let Err(e) = validate::magic_matches(&spec.content_type, &head, &types) {
        discard(app, row).await?;
        return Err(e.into());
    }
    Ok(())
}

/// The answer to a commit that found reservation `id` closed meanwhile: by a concurrent
/// complete of the same upload (the same answer), or by an abort or the expiry sweep
/// (`closed`, the refusal; nothing was written).
pub(super) async fn closed_meanwhile(
    app: &App,
    id: &str,
    spec: &FileSpec,
    closed: ApiError,
) -> ApiResult<Complete> {
    match load_upload(app, id).await? {
        Some(r) if r.state == UploadState::Committed => Ok(committed_answer(spec)),
        _ => Err(closed),
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
