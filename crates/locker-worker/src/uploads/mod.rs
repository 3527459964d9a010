//! The upload flow: reserve (or dedup), the data-plane PUT, complete, abort.
//!
//! Invariant: a `files` row only ever points at a `blobs` row whose bytes this Worker verified
//! (size and SHA-256 of the stored object) and whose bucket is registered; every change to the
//! registry is one D1 batch, and the access-log row of a commit is in that same batch.
//!
//! By job: [`reserve`] answers `POST /v1/uploads` (or dedups), [`batch`] up to 100 of them at
//! once, [`complete_batch`] up to 100 completes, [`data`] is the data plane (the
//! signed PUT into R2, and what stores and verifies bytes), [`finish`] completes and aborts,
//! [`commit`] holds the batches that commit, close and release, [`sweep`] expires what
//! nobody completed, and [`verify`] finishes the check of objects too large for `complete`.

mod batch;
mod commit;
mod complete_batch;
mod data;
mod finish;
mod multipart;
mod reserve;
mod sweep;
mod verify;

pub(crate) use batch::reserve_batch;
pub(crate) use commit::{commit, release_blob, remove_unclaimed};
pub(crate) use complete_batch::complete_batch;
pub(crate) use data::{body_data, data_put, store, verify_stored, Written};
pub(crate) use finish::{abort, complete};
pub(crate) use locker_core::api::ReserveRequest;
pub(crate) use multipart::{info, part_put, parts};
pub(crate) use reserve::{reserve, try_dedup, validate_request};
pub(crate) use sweep::sweep_expired;
pub(crate) use verify::verify_deferred;

use locker_core::{LockerRef, LogicalPath, Namespace, Sha256Hex, Tenant};

use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::log::LogEntry;
pub(crate) use crate::registry::FileSpec;
use crate::registry::{UploadRow, Uploads};

impl FileSpec {
    pub(crate) fn locker_ref(&self) -> LockerRef {
        LockerRef::new(self.namespace.clone(), self.path.clone())
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

async fn load_upload(app: &App, id: &str) -> ApiResult<Option<UploadRow>> {
    app.registry().upload(id).await
}

/// A reservation of the caller's tenant; another tenant's answers exactly like a missing one.
async fn own_upload(app: &App, who: &Principal, id: &str) -> ApiResult<UploadRow> {
    let tenant = who.tenant()?;
    match load_upload(app, id).await? {
        Some(row) if row.tenant == tenant.as_str() => Ok(row),
        _ => Err(ApiError::not_found("no such upload")),
    }
}
