//! What the admin reads: `GET /v1/logs` and `GET /v1/stats`.

use serde::{Deserialize, Serialize};

use super::{Provider, Transport};

/// An access-log row's `operation`: what the request did, or `denied` / `failed` for a
/// refusal (the operation it attempted is then named in `error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Reserve,
    Upload,
    Dedup,
    Complete,
    Abort,
    Stat,
    List,
    Download,
    Delete,
    Sign,
    KeyCreate,
    KeyRevoke,
    /// `GET /v1/keys`.
    Keys,
    Token,
    Logs,
    Stats,
    /// A reservation ended by the scheduled sweep.
    Expire,
    BucketRegister,
    Buckets,
    BucketActivate,
    BucketDeactivate,
    Routes,
    RouteSet,
    /// A registry backup run (`POST /v1/backups` or the scheduled one).
    Backup,
    /// `GET /v1/backups` and `GET /v1/backups/{id}`.
    Backups,
    /// A part of a backup fetched through its signed URL.
    BackupDownload,
    /// The reconciler deleted stored bytes nothing claims (a failed deletion retried, or an
    /// orphan object past its grace period).
    ReconcileDelete,
    /// The reconciler found a blob whose object is missing or not of its size.
    ReconcileMissing,
    /// `POST /v1/moves`: a move of a tenant's files between buckets started.
    MoveStart,
    /// `GET /v1/moves/{id}`.
    Moves,
    /// A scheduled run moved one blob (copied, verified, switched) or gave up on it.
    MoveBlob,
    /// A refusal for lack of a credential or a permission (401, 403).
    Denied,
    /// Any other refusal or failure.
    Failed,
    /// A request refused before its operation was known; named in `denied` / `failed` rows'
    /// `error`, never an `operation` of its own.
    Request,
    /// A name this build does not know (a newer Worker's): a log page stays readable.
    #[serde(other)]
    Unknown,
}

impl Operation {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Upload => "upload",
            Self::Dedup => "dedup",
            Self::Complete => "complete",
            Self::Abort => "abort",
            Self::Stat => "stat",
            Self::List => "list",
            Self::Download => "download",
            Self::Delete => "delete",
            Self::Sign => "sign",
            Self::KeyCreate => "key_create",
            Self::KeyRevoke => "key_revoke",
            Self::Keys => "keys",
            Self::Token => "token",
            Self::Logs => "logs",
            Self::Stats => "stats",
            Self::Expire => "expire",
            Self::BucketRegister => "bucket_register",
            Self::Buckets => "buckets",
            Self::BucketActivate => "bucket_activate",
            Self::BucketDeactivate => "bucket_deactivate",
            Self::Routes => "routes",
            Self::RouteSet => "route_set",
            Self::Backup => "backup",
            Self::Backups => "backups",
            Self::BackupDownload => "backup_download",
            Self::ReconcileDelete => "reconcile_delete",
            Self::ReconcileMissing => "reconcile_missing",
            Self::MoveStart => "move_start",
            Self::Moves => "moves",
            Self::MoveBlob => "move_blob",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Request => "request",
            Self::Unknown => "unknown",
        }
    }
}

/// One access-log row. Never a signature, a token or a secret: key ids, refs and digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Increasing; pages go newest first.
    pub id: u64,
    /// `null` for the bootstrap admin's own operations and unauthenticated refusals.
    pub tenant: Option<String>,
    pub bucket_id: Option<String>,
    pub operation: Operation,
    pub sha256: Option<String>,
    /// As requested, even when refused as invalid.
    pub namespace: Option<String>,
    pub path: Option<String>,
    /// The server that answered (`LOCKER_SERVER` or the colo).
    pub server: String,
    pub key_id: Option<String>,
    /// `1` or `0`, a number as stored.
    pub success: u8,
    /// `"{status}: {message} ({operation attempted})"` for a refusal, else `null`.
    pub error: Option<String>,
    /// Bytes moved.
    pub bytes: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
}

/// The answer to `GET /v1/logs?since=&until=&operation=&bucket_id=&cursor=&limit=` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// Pass as `cursor=` for the next (older) page: a row id as a string; `null` on the last.
    pub cursor: Option<String>,
}

/// The answer to `GET /v1/stats` (200): counts of the caller's tenant (the bootstrap admin:
/// of all; an admin key limited to some namespaces: of those), and integrity checks that must
/// all be 0. Counts that belong to no namespace are `None` for a namespace-limited key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub files: u64,
    /// `None` for a namespace-limited key: blobs are shared by the tenant's namespaces.
    pub blobs: Option<u64>,
    pub uploads: UploadCounts,
    /// Objects in the default bucket under the tenant's prefix; `None` for a
    /// namespace-limited key.
    pub objects: Option<u64>,
    pub access_log: u64,
    pub buckets: Vec<BucketStats>,
    pub integrity: Integrity,
    /// The reconciler's findings, deployment-wide: only in the bootstrap admin's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageChecks>,
}

/// What the reconciler found in storage (`GET /v1/stats` of the bootstrap admin). Referenced
/// objects are never deleted: a blob whose object is missing or of the wrong size is reported
/// here until a check finds it right (or the blob is deleted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageChecks {
    /// Deletions of bytes that failed and wait for their retry.
    pub pending_deletes: u64,
    pub blobs_missing_object: u64,
    pub blobs_wrong_size: u64,
}

/// Reservations by [`crate::api::UploadState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadCounts {
    pub pending: u64,
    pub committed: u64,
    pub aborted: u64,
    pub expired: u64,
}

/// One registered bucket in [`Stats`], with the files and blobs it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketStats {
    pub id: String,
    pub name: String,
    pub provider: Provider,
    pub transport: Transport,
    /// `1` or `0`, a number as stored (unlike [`crate::api::Bucket::active`]).
    pub active: u8,
    pub files: u64,
    /// `None` for a namespace-limited key.
    pub blobs: Option<u64>,
}

/// Rows pointing at what does not exist; each must be 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    pub routes_without_bucket: u64,
    pub files_without_bucket: u64,
    /// `None` for a namespace-limited key.
    pub blobs_without_bucket: Option<u64>,
    pub files_without_verified_blob: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::test_support::round_trip;

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Every name the Worker writes (log.rs, lib.rs, uploads.rs), and each one's variant.
    const NAMES: [(&str, Operation); 35] = [
        ("reserve", Operation::Reserve),
        ("upload", Operation::Upload),
        ("dedup", Operation::Dedup),
        ("complete", Operation::Complete),
        ("abort", Operation::Abort),
        ("stat", Operation::Stat),
        ("list", Operation::List),
        ("download", Operation::Download),
        ("delete", Operation::Delete),
        ("sign", Operation::Sign),
        ("key_create", Operation::KeyCreate),
        ("key_revoke", Operation::KeyRevoke),
        ("keys", Operation::Keys),
        ("token", Operation::Token),
        ("logs", Operation::Logs),
        ("stats", Operation::Stats),
        ("expire", Operation::Expire),
        ("bucket_register", Operation::BucketRegister),
        ("buckets", Operation::Buckets),
        ("bucket_activate", Operation::BucketActivate),
        ("bucket_deactivate", Operation::BucketDeactivate),
        ("routes", Operation::Routes),
        ("route_set", Operation::RouteSet),
        ("backup", Operation::Backup),
        ("backups", Operation::Backups),
        ("backup_download", Operation::BackupDownload),
        ("reconcile_delete", Operation::ReconcileDelete),
        ("reconcile_missing", Operation::ReconcileMissing),
        ("move_start", Operation::MoveStart),
        ("moves", Operation::Moves),
        ("move_blob", Operation::MoveBlob),
        ("denied", Operation::Denied),
        ("failed", Operation::Failed),
        ("request", Operation::Request),
        ("unknown", Operation::Unknown),
    ];

    #[test]
    fn operation_names() {
        for (name, op) in NAMES {
            assert_eq!(round_trip::<Operation>(&json!(name)), op);
            assert_eq!(op.as_str(), name);
        }
        let newer: Operation = serde_json::from_value(json!("teleport")).unwrap();
        assert_eq!(newer, Operation::Unknown);
    }

    /// log.rs LogRow, as `GET /v1/logs` answers it
    fn row(id: u64, operation: &str, error: Value) -> Value {
        json!({
            "id": id, "tenant": "acme",
            "bucket_id": "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208",
            "operation": operation, "sha256": SHA, "namespace": "corp", "path": "q3/deck.pdf",
            "server": "local", "key_id": "0123456789abcdef",
            "success": if error.is_null() { 1 } else { 0 },
            "error": error, "bytes": 123456, "ts": 1_764_000_000_123u64,
        })
    }

    #[test]
    fn log_pages() {
        let page: LogPage = round_trip(&json!({
            "entries": [row(42, "complete", json!(null)), row(41, "denied", json!("403: this key may not write (reserve)"))],
            "cursor": "41",
        }));
        assert_eq!(page.entries[0].operation, Operation::Complete);
        assert_eq!(page.entries[1].success, 0);
        let refused_early = json!({
            "id": 1, "tenant": null, "bucket_id": null, "operation": "denied", "sha256": null,
            "namespace": null, "path": null, "server": "unknown", "key_id": null, "success": 0,
            "error": "401: missing API key or upload token (request)", "bytes": 0, "ts": 5,
        });
        round_trip::<LogPage>(&json!({"entries": [refused_early], "cursor": null}));
        round_trip::<LogPage>(&json!({"entries": [], "cursor": null}));
    }

    #[test]
    fn stats_of_the_bootstrap_admin_carry_the_reconcilers_findings() {
        let s: Stats = round_trip(&json!({
            "files": 0, "blobs": 0,
            "uploads": {"pending": 0, "committed": 0, "aborted": 0, "expired": 0},
            "objects": 0, "access_log": 1, "buckets": [],
            "integrity": {"routes_without_bucket": 0, "files_without_bucket": 0,
                          "blobs_without_bucket": 0, "files_without_verified_blob": 0},
            "storage": {"pending_deletes": 1, "blobs_missing_object": 2, "blobs_wrong_size": 0},
        }));
        assert_eq!(s.storage.map(|c| c.blobs_missing_object), Some(2));
    }

    #[test]
    fn stats_answer() {
        // keys.rs stats
        let s: Stats = round_trip(&json!({
            "files": 3, "blobs": 2,
            "uploads": {"pending": 1, "committed": 2, "aborted": 0, "expired": 4},
            "objects": 2, "access_log": 40,
            "buckets": [
                {"id": "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208",
                 "name": "locker-blobs", "provider": "r2", "transport": "worker", "active": 1,
                 "files": 3, "blobs": 2},
                {"id": "51e298582e6155cf626d895b3329603fd628f19d1322ea79beabc929b57e2be4",
                 "name": "e2e-direct", "provider": "s3", "transport": "s3", "active": 0,
                 "files": 0, "blobs": 0},
            ],
            "integrity": {"routes_without_bucket": 0, "files_without_bucket": 0,
                          "blobs_without_bucket": 0, "files_without_verified_blob": 0},
        }));
        assert_eq!(s.uploads.expired, 4);
        assert_eq!(s.buckets[1].transport, Transport::S3);
    }

    #[test]
    fn stats_of_a_namespace_limited_key() {
        // keys.rs stats with Reach::Namespaces: tenant-wide counts are null.
        let s: Stats = round_trip(&json!({
            "files": 1, "blobs": null,
            "uploads": {"pending": 0, "committed": 1, "aborted": 0, "expired": 0},
            "objects": null, "access_log": 5,
            "buckets": [
                {"id": "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208",
                 "name": "locker-blobs", "provider": "r2", "transport": "worker", "active": 1,
                 "files": 1, "blobs": null},
            ],
            "integrity": {"routes_without_bucket": 0, "files_without_bucket": 0,
                          "blobs_without_bucket": null, "files_without_verified_blob": 0},
        }));
        assert_eq!((s.blobs, s.objects, s.buckets[0].blobs), (None, None, None));
    }
}
