//! The typed rows the registry reads and the values it writes.

use locker_core::api::{Operation, Provider, Transport, UploadState, Verify};
use locker_core::scope::Scopes;
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

/// A file as stored.
#[derive(Deserialize, Clone, Debug)]
pub(crate) struct FileRow {
    pub namespace: String,
    pub path: String,
    pub sha256: String,
    pub bucket_id: String,
    pub size: u64,
    pub content_type: String,
    pub filename: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One page of a namespace's files whose path starts with `prefix`, after `cursor`.
pub(crate) struct FilePage<'a> {
    pub tenant: &'a str,
    pub namespace: &'a str,
    pub prefix: &'a str,
    /// The last path of the page before; empty for the first.
    pub cursor: &'a str,
    pub limit: u64,
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

/// One commit of [`super::Uploads::commit_many`]: the arguments of [`super::Uploads::commit`].
#[derive(Debug)]
pub(crate) struct CommitItem<'a> {
    pub spec: &'a FileSpec,
    pub bucket_id: &'a str,
    pub upload_id: Option<&'a str>,
    pub log: LogRecord,
}

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Committed {
    /// Blob, file and log row written; the path pointed at `replaced` before.
    Done { replaced: Option<String> },
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

/// An API key as stored, its scopes parsed.
#[derive(Clone, Debug)]
pub(crate) struct KeyRow {
    pub tenant: String,
    pub scopes: Scopes,
    /// `hex(sha256(secret))`.
    pub secret_hash: String,
    pub revoked: bool,
    /// Unix milliseconds; `None`: the key never expires.
    pub expires_at: Option<u64>,
}

impl KeyRow {
    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// A new API key.
pub(crate) struct NewKey<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub scopes: &'a Scopes,
    pub secret_hash: &'a str,
    pub label: Option<&'a str>,
    /// Unix milliseconds.
    pub expires_at: Option<u64>,
}

/// The filters of one page of `GET /v1/logs`, and whose rows the caller may see.
#[derive(Debug, Default)]
pub(crate) struct LogQuery {
    /// `None`: every tenant's rows (the bootstrap admin only).
    pub tenant: Option<String>,
    /// `Some`: only rows of these namespaces, a JSON array (an admin key limited to some
    /// namespaces; rows without a namespace are tenant-wide and stay hidden from it).
    pub namespaces: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub operation: Option<String>,
    pub bucket_id: Option<String>,
    pub cursor: Option<u64>,
    pub limit: u64,
}

/// A registered bucket.
#[derive(Clone, Debug)]
pub(crate) struct BucketRow {
    pub id: String,
    pub name: String,
    pub provider: Provider,
    pub transport: Transport,
    /// The R2 binding, for the `worker` transport.
    pub binding: Option<String>,
    pub account_id: String,
    pub jurisdiction: String,
    /// The S3 endpoint, for the `s3` transport.
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    /// How a single PUT into an `s3` transport bucket is verified; unused for `worker`.
    pub verify: Verify,
    pub active: bool,
    pub created_at: u64,
}

/// Whose rows an admin sees: the bootstrap admin every tenant's, an admin key for all
/// namespaces (`*`) its tenant's, and one limited to some namespaces only the rows of those.
/// Tenant-wide facts that belong to no namespace (blobs, stored objects, rows without a
/// namespace) are for the first two only.
pub(crate) enum Reach {
    Everything,
    Tenant(String),
    /// The tenant, and the key's namespaces as a JSON array (bound as one parameter and read
    /// with `json_each`, so any number of namespaces is one statement).
    Namespaces(String, String),
}

impl Reach {
    pub(crate) fn tenant(&self) -> Option<&str> {
        match self {
            Reach::Everything => None,
            Reach::Tenant(t) | Reach::Namespaces(t, _) => Some(t),
        }
    }

    pub(crate) fn namespaces(&self) -> Option<&str> {
        match self {
            Reach::Namespaces(_, ns) => Some(ns),
            _ => None,
        }
    }

    /// Whether this reach may count tenant-wide facts (rows without a namespace).
    pub(crate) fn tenant_wide(&self) -> bool {
        !matches!(self, Reach::Namespaces(..))
    }
}
