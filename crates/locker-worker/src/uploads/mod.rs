//! The upload flow: reserve (or dedup), the data-plane PUT, complete, abort.
//!
//! Invariant: a `files` row only ever points at a `blobs` row whose bytes this Worker verified
//! (size and SHA-256 of the stored object) and whose bucket is registered; every change to the
//! registry is one D1 batch, and the access-log row of a commit is in that same batch.
//!
//! By job: [`reserve`] answers `POST /v1/uploads` (or dedups), [`data`] is the data plane (the
//! signed PUT into R2, and what stores and verifies bytes), [`finish`] completes and aborts,
//! [`commit`] holds the batches that commit, close and release, and [`sweep`] expires what
//! nobody completed.

mod commit;
mod data;
mod finish;
mod reserve;
mod sweep;

pub(crate) use commit::{commit, release_blob, remove_unclaimed};
pub(crate) use data::{body_data, data_put, store, verify_stored};
pub(crate) use finish::{abort, complete};
pub(crate) use locker_core::api::ReserveRequest;
#[cfg(test)]
pub(crate) use reserve::DEDUP_SQL;
pub(crate) use reserve::{reserve, try_dedup, validate_request};
pub(crate) use sweep::sweep_expired;
#[cfg(test)]
pub(crate) use sweep::SWEEP_SQL;

use locker_core::api::UploadState;
use locker_core::{LockerRef, LogicalPath, Namespace, ObjectKey, Sha256Hex, Tenant};
use serde::{Deserialize, Serialize};

use crate::app::{s, App};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::log::LogEntry;

/// A reservation as stored.
#[derive(Deserialize, Serialize, Clone)]
pub(crate) struct UploadRow {
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
    /// Parsed when the row is read: a name outside the set fails the read.
    pub state: UploadState,
    pub expires_at: u64,
}

/// What a file row will hold, validated.
pub(crate) struct FileSpec {
    pub tenant: Tenant,
    pub namespace: Namespace,
    pub path: LogicalPath,
    pub sha256: Sha256Hex,
    pub size: u64,
    pub content_type: String,
    pub filename: String,
}

impl FileSpec {
    pub(crate) fn locker_ref(&self) -> LockerRef {
        LockerRef::new(self.namespace.clone(), self.path.clone())
    }

    pub(crate) fn key(&self) -> ObjectKey {
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
