//! The complete of an upload in parts: under the completion lock, storage's complete of the
//! parts, the check of the whole object, then the commit (or the deferred check).

use std::collections::BTreeSet;

use locker_core::api::{Complete, UploadState};
use locker_core::multipart::PartPlan;
use locker_core::s3::CompletedPart;
use locker_core::{validate, Sha256Hex};

use super::{multipart_of, storage, stored_parts, COMPLETION_LOCK_MS};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{Parts, UploadRow, Uploads};
use crate::store::Store;
use crate::uploads::commit::{commit, discard};
use crate::uploads::data::{check_stored, Checked, Written};
use crate::uploads::finish::{committed_answer, verifying_answer};
use crate::uploads::{load_upload, FileSpec};

/// The complete of a pending multipart upload (the caller checked the state and the rights):
/// under the completion lock, every part present with its length, storage's complete, then the
/// whole object checked like any upload, then the commit.
pub(crate) async fn complete(
    app: &App,
    who: &Principal,
    row: &UploadRow,
    spec: &FileSpec,
    log: &mut LogEntry,
) -> ApiResult<Complete> {
    let (plan, multipart_id) = multipart_of(row)?;
    if !app
        .registry()
        .lock_completion(&row.id, app.now_ms.saturating_sub(COMPLETION_LOCK_MS))
        .await?
    {
        return Err(match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => return Ok(committed_answer(spec)),
            Some(r) if r.state == UploadState::Verifying => return Ok(verifying_answer(spec)),
            Some(r) if r.state != UploadState::Pending => ApiError::new(
                ErrorKind::UploadClosed,
                format!("this upload is {}", r.state.as_str()),
            ),
            _ => ApiError::new(
                ErrorKind::UploadBusy,
                "this upload is being completed by another request",
            ),
        });
    }
    let outcome = complete_locked(app, who, row, spec, &plan, multipart_id, log).await;
    if outcome.is_err() {
        // A refusal that ended the upload (wrong bytes) closed it already; any other leaves it
        // pending, so the client can send what is missing and complete again.
        if let Err(e) = app.registry().unlock_completion(&row.id).await {
            worker::console_error!("complete: unlock {}: {}", row.id, e.message);
        }
    }
    outcome
}

async fn complete_locked(
    app: &App,
    who: &Principal,
    row: &UploadRow,
    spec: &FileSpec,
    plan: &PartPlan,
    multipart_id: &str,
    log: &mut LogEntry,
) -> ApiResult<Complete> {
    let parts = stored_parts(app, row, plan, multipart_id).await?;
    let have: BTreeSet<u32> = parts.iter().map(|(p, _)| p.number).collect();
    let missing: Vec<String> = (1..=plan.part_count())
        .filter(|n| !have.contains(n))
        .take(20)
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorKind::PartsMissing,
            format!(
                "storage does not hold every part; missing: {}{}",
                missing.join(", "),
                if missing.len() == 20 { ", ..." } else { "" }
            ),
        ));
    }
    let store = Store::open(app, &row.bucket_id).await?;
    let key = spec.key();
    // The key is the content hash: bytes already there (another upload of the same file made
    // them) are verified as they are, and this upload's parts are dropped instead of written
    // over them.
    let made = if store.head(app, key.as_str()).await?.is_some() {
        drop_parts(app, &store, key.as_str(), multipart_id).await;
        false
    } else {
        match &store {
            Store::Binding(bucket) => {
                let mut list = Vec::with_capacity(parts.len());
                for (p, etag) in &parts {
                    let number = u16::try_from(p.number).map_err(|_| {
                        ApiError::new(ErrorKind::Internal, "a part number beyond 10,000")
                    })?;
                    let etag = etag.clone().ok_or_else(|| {
                        ApiError::new(ErrorKind::Internal, "a stored part without its ETag")
                    })?;
                    list.push((number, etag));
                }
                storage::complete_r2(bucket, key.as_str(), multipart_id, list).await?;
                true
            }
            Store::S3(b, _) => {
                let mut list = Vec::with_capacity(parts.len());
                for (p, etag) in &parts {
                    list.push(CompletedPart {
                        number: p.number,
                        etag: etag.clone(),
                        sha256: Sha256Hex::parse(&p.sha256)?,
                    });
                }
                match storage::complete_s3(app, b, key.as_str(), multipart_id, &list).await? {
                    storage::Completed::Made => true,
                    storage::Completed::KeyTaken => {
                        drop_parts(app, &store, key.as_str(), multipart_id).await;
                        false
                    }
                }
            }
        }
    };
    let checked = match check_stored(
        app,
        &store,
        spec,
        crate::config::verify_inline_max(&app.env),
        Written::InParts,
    )
    .await
    {
        Ok(checked) => checked,
        Err(e) => {
            if e.kind.is_wrong_bytes() {
                // The bytes at the key are not the reserved ones. Made by this complete, they
                // are this upload's and go with it; found there, they are another pending
                // upload's, whose own complete will refuse and remove them.
                discard(app, row).await?;
                if made {
                    store.delete(app, key.as_str()).await?;
                }
            }
            return Err(e);
        }
    };
    // The magic number is checked now, with the caller's type limits, even when the digest is
    // left to the scheduled check: storage objects are write-once, so the bytes sniffed here
    // are the bytes that check will hash.
    let (_, types) = who.limits(app);
    if let Err(e) = validate::magic_matches(
        &spec.content_type,
        &store.sniff(app, key.as_str(), spec.size).await?,
        &types,
    ) {
        discard(app, row).await?;
        return Err(e.into());
    }
    if checked == Checked::SizeOnly {
        return defer(app, row, spec).await;
    }
    log.bytes = spec.size;
    match commit(app, spec, &row.bucket_id, Some(&row.id), log).await {
        Err(e) if e.kind == ErrorKind::UploadClosed => match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => Ok(committed_answer(spec)),
            _ => Err(e),
        },
        Err(e) => Err(e),
        Ok(()) => {
            if let Err(e) = app.registry().forget_parts(&row.id).await {
                worker::console_error!("complete: forget parts {}: {}", row.id, e.message);
            }
            Ok(committed_answer(spec))
        }
    }
}

/// An object too large to hash within this request: the upload becomes `verifying` (no blob,
/// no file, so no dedup hit and no download) until the scheduled check commits or refuses it.
async fn defer(app: &App, row: &UploadRow, spec: &FileSpec) -> ApiResult<Complete> {
    if !app.registry().defer_verification(&row.id).await? {
        return match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => Ok(committed_answer(spec)),
            Some(r) if r.state == UploadState::Verifying => Ok(verifying_answer(spec)),
            other => Err(ApiError::new(
                ErrorKind::UploadClosed,
                format!(
                    "this upload is {}",
                    other.map_or("gone", |r| r.state.as_str())
                ),
            )),
        };
    }
    // The parts are one object in storage now; their rows are no longer needed.
    if let Err(e) = app.registry().forget_parts(&row.id).await {
        worker::console_error!("complete: forget parts {}: {}", row.id, e.message);
    }
    Ok(verifying_answer(spec))
}

/// Aborts the storage upload whose parts are not needed (the object exists already). A failure
/// is only logged: the parts are then left to the abort that ends the reservation or to
/// storage's own expiry of abandoned uploads, and the complete goes on.
async fn drop_parts(app: &App, store: &Store, key: &str, multipart_id: &str) {
    if let Err(e) = storage::abort(app, store, key, multipart_id).await {
        worker::console_error!("complete: abort of unneeded parts: {}", e.message);
    }
}
