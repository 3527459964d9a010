//! Uploads in parts, on both transports: the reservation's plan, the parts' signed URLs, the
//! data plane of a part (`worker` transport), the reservation's state with its stored parts,
//! and the complete that checks the whole object before committing.
//!
//! Invariants, beside those of [`super`]:
//! - a part is accepted only with the length the plan gives its number and the SHA-256 its URL
//!   was signed for; through the Worker, the bytes are checked before R2 keeps them;
//! - a complete runs alone (a lock in the registry) and no part is taken while it runs;
//! - nothing is committed before the whole stored object has the reserved size and SHA-256
//!   (hashed by the runtime's native digest): the parts' checks are a help, not the proof;
//! - when a multipart reservation ends without a commit (abort, wrong bytes, the sweep), its
//!   storage upload is aborted, so no part stays billed.
//!
//! By job: [`plan`] reserves (starts the upload in storage, answers the plan), [`parts`] signs
//! the parts' URLs and takes a part through the Worker, [`info`] answers a reservation's state,
//! [`complete`] checks and commits the whole object, [`storage`] speaks to R2 and S3; what
//! several of them need (the plan of a row, the parts stored, the end in storage) is here.

mod complete;
mod info;
mod parts;
mod plan;
mod storage;

pub(crate) use complete::complete;
pub(crate) use info::info;
pub(crate) use parts::{part_put, parts};
pub(crate) use plan::reserve;

use std::collections::BTreeMap;

use locker_core::api::{Transport, UploadState};
use locker_core::multipart::{PartPlan, PlanError};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{PartRow, Parts, UploadRow};
use crate::store::Store;

/// A complete (or a scheduled check) older than this is taken to have died (its lock is taken
/// over): far above the time a Worker request or a cron run may run.
pub(super) const COMPLETION_LOCK_MS: u64 = 15 * 60 * 1000;

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let kind = match e {
            PlanError::TooLarge { .. } => ErrorKind::TooLarge,
            PlanError::WrongSize { .. } => ErrorKind::SizeMismatch,
            PlanError::Empty | PlanError::NoSuchPart { .. } => ErrorKind::InvalidPart,
        };
        Self::new(kind, e.to_string())
    }
}

fn transport(store: &Store) -> Transport {
    match store {
        Store::Binding(_) => Transport::Worker,
        Store::S3(..) => Transport::S3,
    }
}

/// The plan a multipart row was reserved with; `None` for an upload in one request.
fn plan_of(row: &UploadRow) -> ApiResult<Option<(PartPlan, &str)>> {
    let (Some(id), Some(size), Some(count)) = (&row.multipart_id, row.part_size, row.part_count)
    else {
        return Ok(None);
    };
    PartPlan::from_parts(row.size, size, count)
        .map(|p| Some((p, id.as_str())))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Internal,
                "the registry holds a multipart plan this Worker cannot read",
            )
        })
}

fn multipart_of(row: &UploadRow) -> ApiResult<(PartPlan, &str)> {
    plan_of(row)?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotMultipart,
            "this upload is one request, not in parts",
        )
    })
}

/// The refusal for a reservation that takes no more parts.
fn closed(row: &UploadRow) -> Option<ApiError> {
    if row.state != UploadState::Pending {
        return Some(ApiError::new(
            ErrorKind::UploadClosed,
            format!("this upload is {}", row.state.as_str()),
        ));
    }
    row.completing_at.map(|_| {
        ApiError::new(
            ErrorKind::UploadBusy,
            "this upload is being completed; it takes no more parts",
        )
    })
}

/// The parts storage holds for a pending upload, each with the length its number takes and the
/// digest declared for it: through the Worker, those it stored; straight to storage, those
/// ListParts names (with a matching checksum where storage reports one).
async fn stored_parts(
    app: &App,
    row: &UploadRow,
    plan: &PartPlan,
    multipart_id: &str,
) -> ApiResult<Vec<(PartRow, Option<String>)>> {
    let declared = app.registry().parts(&row.id).await?;
    match Store::open(app, &row.bucket_id).await? {
        Store::Binding(_) => Ok(declared
            .into_iter()
            .filter(|p| p.stored_at.is_some() && plan.check_part(p.number, p.size).is_ok())
            .map(|p| {
                let etag = p.etag.clone();
                (p, etag)
            })
            .collect()),
        Store::S3(b, _) => {
            let listed = storage::list_parts(app, &b, &row.key, multipart_id).await?;
            let by_number: BTreeMap<u32, &PartRow> =
                declared.iter().map(|p| (p.number, p)).collect();
            let mut found = Vec::new();
            for part in listed {
                let Some(decl) = by_number.get(&part.number) else {
                    continue;
                };
                let checksum_ok = part
                    .sha256
                    .as_ref()
                    .is_none_or(|s| s.to_string() == decl.sha256);
                if part.size == decl.size
                    && plan.check_part(part.number, part.size).is_ok()
                    && checksum_ok
                {
                    found.push(((*decl).clone(), part.etag));
                }
            }
            found.sort_by_key(|(p, _)| p.number);
            found.dedup_by_key(|(p, _)| p.number);
            Ok(found)
        }
    }
}

/// After a multipart reservation ended without a commit (aborted, expired, wrong bytes):
/// aborts its storage upload, so storage drops the parts, and forgets their rows. A failure is
/// logged to the console; the parts are then left to storage's own expiry of abandoned uploads.
pub(crate) async fn end_in_storage(app: &App, row: &UploadRow) {
    let Some(multipart_id) = &row.multipart_id else {
        return;
    };
    let aborted = match Store::open(app, &row.bucket_id).await {
        Ok(store) => storage::abort(app, &store, &row.key, multipart_id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = aborted {
        worker::console_error!("multipart abort of {}: {}", row.id, e.message);
    }
    if let Err(e) = app.registry().forget_parts(&row.id).await {
        worker::console_error!("forget parts of {}: {}", row.id, e.message);
    }
}
