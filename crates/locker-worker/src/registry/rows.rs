//! The typed rows the registry reads and the values it writes.

use locker_core::api::{Operation, UploadState};
use locker_core::{LogicalPath, Namespace, ObjectKey, Sha256Hex, Tenant};
use serde::Deserialize;

/// A reservation as stored.
#[derive(Deserialize, Clone, Debug)]
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
    /// When the reservation's URLs stop being signed, Unix milliseconds.
    pub expires_at: u64,
    /// Storage's id of the multipart upload; `None` for an upload in one request.
    #[serde(default)]
    pub multipart_id: Option<String>,
    /// The multipart plan (both set, or neither).
    #[serde(default)]
    pub part_size: Option<u64>,
    #[serde(default)]
    pub part_count: Option<u32>,
    /// Set while a complete runs (Unix milliseconds): no second complete, no part meanwhile.
    #[serde(default)]
    pub completing_at: Option<u64>,
}

/// One part of a multipart upload whose URL was given: declared, and maybe stored.
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct PartRow {
    pub number: u32,
    pub size: u64,
    pub sha256: String,
    /// Storage's ETag of the stored part (the `worker` transport records it).
    pub etag: Option<String>,
    /// When the Worker stored it (the `worker` transport); `None`: not (yet) through it.
    pub stored_at: Option<u64>,
}

/// A part declared for a URL: its number, exact length and digest.
#[derive(Clone, Debug)]
pub(crate) struct PartDecl {
    pub number: u32,
    pub size: u64,
    pub sha256: String,
}

/// A new pending reservation.
pub(crate) struct NewUpload<'a> {
    pub id: &'a str,
    pub spec: &'a FileSpec,
    pub bucket_id: &'a str,
    /// The key that reserved it.
    pub key_id: &'a str,
    pub expires_at_ms: u64,
    pub multipart_id: Option<&'a str>,
    /// The multipart plan: part size and count.
    pub parts: Option<(u64, u32)>,
}

/// A tenant's stored bytes.
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct BlobRow {
    pub size: u64,
    pub bucket_id: String,
    /// Where the bytes are in their bucket.
    pub key: String,
}

/// What a file row will hold, validated.
#[derive(Clone, Debug)]
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
    /// The key the Worker stores these bytes under.
    pub(crate) fn key(&self) -> ObjectKey {
        ObjectKey::for_blob(&self.tenant, &self.sha256)
    }
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    /// Blob, file and log row written.
    Done,
    /// The reservation was no longer pending: nothing was written, the log row neither.
    Closed,
    /// The reservation closed and the log row was written, but the file row was not (its blob
    /// vanished or its bucket is not registered).
    NoFile,
}

/// One access-log row, complete.
#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    pub tenant: Option<String>,
    pub bucket_id: Option<String>,
    pub operation: Operation,
    pub sha256: Option<String>,
    pub namespace: Option<String>,
    pub path: Option<String>,
    pub server: String,
    pub key_id: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    pub bytes: u64,
    pub ts: u64,
}
