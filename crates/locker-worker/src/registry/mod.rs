//! The registry: every row the Worker keeps (uploads, blobs, files, buckets, routes, keys, the
//! access log) is read and written here, and only here. Handlers see traits and typed rows;
//! [`D1Registry`] is the backend over D1, and another (PostgreSQL through Hyperdrive, say)
//! implements the same traits without a handler changing.
//!
//! Invariants every backend keeps:
//! - a `files` row only ever points at a verified `blobs` row whose bucket is registered;
//! - what one trait method writes is one unit (one D1 batch, one transaction): it happens
//!   whole or not at all, and the access-log row a method takes is written in that unit, and
//!   only when the change it records happened;
//! - values in rows are parsed once, when the row is read: a value outside its set (a state,
//!   a provider) fails the read with an internal error that names it, never later.
//!
//! Writes stamp the request's time, which the backend is opened with.

mod backups;
mod d1;
mod moves;
mod reconcile;
mod rows;

pub(crate) use backups::{BackupRow, Backups, Cursor, Page};
pub(crate) use moves::{Left, MoveRow, Moves, MovingBlob};
pub(crate) use reconcile::{CheckedBlob, PendingDelete, Reconcile};

#[cfg(test)]
pub(crate) use d1::{
    stats_buckets_sql, REACH_NAMESPACES, REACH_TENANT, ROUTES_SQL, ROUTE_SQL, STAT_COUNTS,
};
pub(crate) use d1::{D1Registry, D1Work, METER_VAR};
#[cfg(test)]
pub(crate) use d1::{
    DEDUP_MANY_SQL, DEDUP_SQL, KEYS_ALL_SQL, KEYS_NAMESPACES_SQL, KEYS_TENANT_SQL, LIST_OPEN_SQL,
    LIST_PREFIX_SQL, LIVE_BY_SHA256_SQL, PARTS_SQL, SWEEP_SQL, UPLOADS_MANY_SQL, VERIFYING_SQL,
};
pub(crate) use rows::{
    BlobRow, BucketRow, CommitItem, Committed, FilePage, FileRow, FileSpec, KeyRow, LogQuery,
    LogRecord, NewKey, NewUpload, PartDecl, PartRow, Reach, UploadRow,
};

use locker_core::api::{KeyInfo, LogEntry, Route, Stats, UploadState};

use crate::error::ApiResult;

/// Reservations and the batches that end them.
#[allow(async_fn_in_trait)]
pub(crate) trait Uploads {
    /// The reservation `id`, of any tenant.
    async fn upload(&self, id: &str) -> ApiResult<Option<UploadRow>>;

    /// The reservations of `ids` that exist, of any tenant, in one read (no order).
    async fn uploads(&self, ids: &[String]) -> ApiResult<Vec<UploadRow>>;

    /// Records a pending reservation (registering the default bucket first if it is the
    /// target), with its access-log row.
    async fn reserve(&self, upload: &NewUpload<'_>, log: &LogRecord) -> ApiResult<()>;

    /// Records pending reservations, each with its access-log row, and the rows of `logs`
    /// (a batch's refused items), as one unit (registering the default bucket first).
    async fn reserve_many(
        &self,
        uploads: &[(NewUpload<'_>, LogRecord)],
        logs: &[LogRecord],
    ) -> ApiResult<()>;

    /// Commits verified bytes: the blob (verified), the file and the log row; with `upload_id`,
    /// first closes that pending (or verifying) reservation as `committed`, and writes nothing
    /// else unless that worked.
    async fn commit(
        &self,
        spec: &FileSpec,
        bucket_id: &str,
        upload_id: Option<&str>,
        log: &LogRecord,
    ) -> ApiResult<Committed>;

    /// Several commits, each exactly as [`Uploads::commit`] (its reservation closed first, and
    /// nothing else of it written unless that worked), and the rows of `logs`, in one D1
    /// batch; one answer per commit, in order.
    async fn commit_many(
        &self,
        commits: &[CommitItem<'_>],
        logs: &[LogRecord],
    ) -> ApiResult<Vec<Committed>>;

    /// Ends the reservation `id` that is in state `from` (`pending`, `verifying`) as `to`
    /// (`aborted`, `expired`), with `log` written only if it did. `false`: it was no longer in
    /// `from`, nothing was written.
    async fn close_upload(
        &self,
        id: &str,
        from_to: (UploadState, UploadState),
        log: Option<&LogRecord>,
    ) -> ApiResult<bool>;

    /// Moves the pending reservation `id`, whose object storage holds complete and of the right
    /// size, to `verifying` and frees its completion lock. `false`: it was no longer pending.
    async fn defer_verification(&self, id: &str) -> ApiResult<bool>;

    /// Reservations in `verifying` whose lock is free or older than `stale_before_ms`, at
    /// most `limit`.
    async fn verifying_uploads(
        &self,
        stale_before_ms: u64,
        limit: u64,
    ) -> ApiResult<Vec<UploadRow>>;

    /// Takes the lock of the verifying reservation `id` (one check at a time; a lock older
    /// than `stale_before_ms`, a check that died, is taken over). `false`: not verifying, or
    /// held.
    async fn lock_verification(&self, id: &str, stale_before_ms: u64) -> ApiResult<bool>;

    /// Pending reservations that expired before `cutoff_ms`, oldest first, at most `limit`.
    async fn expired_uploads(&self, cutoff_ms: u64, limit: u64) -> ApiResult<Vec<UploadRow>>;
}

/// The parts of multipart uploads: declared when their URLs are given, stored when the
/// Worker's data plane took them, forgotten when their upload ends.
#[allow(async_fn_in_trait)]
pub(crate) trait Parts {
    /// Declares `parts` of upload `id` (each one's length and digest, what its URL binds),
    /// replacing an earlier declaration of the same number; a part stored with another digest
    /// than the new one counts as not stored. Only while the upload is pending and no complete
    /// runs: `false`, nothing written, otherwise.
    async fn declare_parts(&self, id: &str, parts: &[PartDecl]) -> ApiResult<bool>;

    /// Every declared part of upload `id`, by number.
    async fn parts(&self, id: &str) -> ApiResult<Vec<PartRow>>;

    /// Records that part `number` of upload `id` is stored with `etag`, if it is still declared
    /// with `sha256` and the upload is pending with no complete running. `false` otherwise.
    async fn part_stored(&self, id: &str, number: u32, sha256: &str, etag: &str)
        -> ApiResult<bool>;

    /// Takes the upload's completion lock: only one complete runs at a time. A lock older than
    /// `stale_before_ms` (a complete that died) is taken over. `false`: not pending, or held.
    async fn lock_completion(&self, id: &str, stale_before_ms: u64) -> ApiResult<bool>;

    /// Releases the lock taken at this request's time (a complete that did not commit).
    async fn unlock_completion(&self, id: &str) -> ApiResult<()>;

    /// Deletes the part rows of upload `id` once it is no longer pending.
    async fn forget_parts(&self, id: &str) -> ApiResult<()>;
}

/// Stored bytes, per tenant and SHA-256.
#[allow(async_fn_in_trait)]
pub(crate) trait Blobs {
    /// The tenant's blob with these bytes, verified or not.
    async fn blob(&self, tenant: &str, sha256: &str) -> ApiResult<Option<BlobRow>>;

    /// The tenant's verified blob with these bytes (what a dedup may reuse).
    async fn verified_blob(&self, tenant: &str, sha256: &str) -> ApiResult<Option<BlobRow>>;

    /// The tenant's verified blobs among these SHA-256s, in one read, by SHA-256.
    async fn verified_blobs(
        &self,
        tenant: &str,
        sha256s: &[String],
    ) -> ApiResult<std::collections::HashMap<String, BlobRow>>;

    /// What a reservation needs to know, in one round trip: [`Self::verified_blob`] (a dedup
    /// answers from it) and [`Buckets::route`] of `namespace` (where new bytes go otherwise).
    async fn reserve_lookup(
        &self,
        tenant: &str,
        sha256: &str,
        namespace: &str,
    ) -> ApiResult<(Option<BlobRow>, Option<String>)>;

    /// Whether a blob row or a pending reservation claims these bytes of the tenant in bucket
    /// `bucket_id` (a blob moved to another bucket no longer claims the object it left
    /// behind), or with `None` in any bucket: the orphan passes ask that, since two
    /// registrations may name one physical bucket (another endpoint form of it), where an
    /// object one of them claims must never be taken for the other's orphan.
    async fn blob_claimed(
        &self,
        tenant: &str,
        sha256: &str,
        bucket_id: Option<&str>,
    ) -> ApiResult<bool>;

    /// Deletes the blob's row if no file and no pending reservation of the tenant uses it.
    /// `true`: this call deleted it (two concurrent releases cannot both).
    async fn release_blob(&self, tenant: &str, sha256: &str) -> ApiResult<bool>;
}

/// Files: a tenant's paths and the blob each points at.
#[allow(async_fn_in_trait)]
pub(crate) trait Files {
    /// The tenant's file at `namespace/path`.
    async fn file(&self, tenant: &str, namespace: &str, path: &str) -> ApiResult<Option<FileRow>>;

    /// One page of files, ordered by path.
    async fn list_files(&self, page: &FilePage<'_>) -> ApiResult<Vec<FileRow>>;

    /// Some file of the tenant with these bytes; one other than `other_than` if there is.
    async fn file_with_sha256(
        &self,
        tenant: &str,
        sha256: &str,
        other_than: Option<(&str, &str)>,
    ) -> ApiResult<Option<FileRow>>;

    /// Deletes the file at `namespace/path` if it still points at `sha256`, with the log row
    /// (written either way). `false`: it changed or went meanwhile.
    async fn delete_file(
        &self,
        tenant: &str,
        namespace: &str,
        path: &str,
        sha256: &str,
        log: &LogRecord,
    ) -> ApiResult<bool>;

    /// Points the path at the tenant's verified blob with the spec's bytes (a dedup), with the
    /// log row. `Some(replaced)`: done, and the path pointed at `replaced` before; `None`: no
    /// such blob (released meanwhile), nothing was written.
    async fn link_file(
        &self,
        spec: &FileSpec,
        log: &LogRecord,
    ) -> ApiResult<Option<Option<String>>> {
        let mut linked = self.link_files(&[(spec, log)]).await?;
        Ok(linked.pop().flatten())
    }

    /// [`Files::link_file`] for many dedups in one D1 batch (each its own upsert and log row
    /// under its own condition), answered in their order.
    async fn link_files(
        &self,
        links: &[(&FileSpec, &LogRecord)],
    ) -> ApiResult<Vec<Option<Option<String>>>>;
}

/// API keys.
#[allow(async_fn_in_trait)]
pub(crate) trait Keys {
    /// The key `id`, revoked or not.
    async fn key(&self, id: &str) -> ApiResult<Option<KeyRow>>;

    /// The key `id` if not revoked, and of `tenant` when given.
    async fn active_key(&self, id: &str, tenant: Option<&str>) -> ApiResult<Option<KeyRow>>;

    /// Stores a new key, with the log row.
    async fn create_key(&self, key: &NewKey<'_>, log: &LogRecord) -> ApiResult<()>;

    /// Revokes the key `id` if active (and of `tenant` when given). `false`: it was not.
    async fn revoke_key(&self, id: &str, tenant: Option<&str>) -> ApiResult<bool>;

    /// Up to `limit` keys within `reach` with an id after `cursor` (`""`: from the first),
    /// ordered by id, revoked ones too. For [`Reach::Namespaces`], only keys all of whose
    /// namespaces are among the reach's (so never a `*` key).
    async fn list_keys(&self, reach: &Reach, cursor: &str, limit: u64) -> ApiResult<Vec<KeyInfo>>;
}

/// Buckets and the routes that send a tenant's namespaces to them.
#[allow(async_fn_in_trait)]
pub(crate) trait Buckets {
    /// The bucket `id`.
    async fn bucket(&self, id: &str) -> ApiResult<Option<BucketRow>>;

    /// How many buckets are registered.
    async fn bucket_count(&self) -> ApiResult<u64>;

    /// Every registered bucket, oldest first.
    async fn buckets(&self) -> ApiResult<Vec<BucketRow>>;

    /// The id of a bucket with `row`'s provider, account, jurisdiction and name, if any.
    async fn bucket_named(&self, row: &BucketRow) -> ApiResult<Option<String>>;

    /// Registers `row`, with the log row.
    async fn register_bucket(&self, row: &BucketRow, log: &LogRecord) -> ApiResult<()>;

    /// Activates or deactivates the bucket `id`, with the log row.
    async fn set_bucket_active(&self, id: &str, active: bool, log: &LogRecord) -> ApiResult<()>;

    /// Routes the tenant's `namespace` (`*`: every one without its own route) to `bucket_id`
    /// (registering the default bucket first), with the log row.
    async fn set_route(
        &self,
        tenant: &str,
        namespace: &str,
        bucket_id: &str,
        log: &LogRecord,
    ) -> ApiResult<()>;

    /// The routes `reach` sees, by namespace.
    async fn routes(&self, reach: &Reach) -> ApiResult<Vec<Route>>;

    /// The bucket the tenant's `namespace` is routed to (its own route, else `*`), if any.
    async fn route(&self, tenant: &str, namespace: &str) -> ApiResult<Option<String>>;
}

/// The counts of `GET /v1/stats`.
#[allow(async_fn_in_trait)]
pub(crate) trait StatsSource {
    /// What `reach` may count; `objects` (in storage, not the registry) is left `None`.
    async fn stats(&self, reach: &Reach) -> ApiResult<Stats>;
}

/// The access log.
#[allow(async_fn_in_trait)]
pub(crate) trait AccessLog {
    /// Appends one row.
    async fn append(&self, log: &LogRecord) -> ApiResult<()>;

    /// One page of rows, newest first.
    async fn log_page(&self, query: &LogQuery) -> ApiResult<Vec<LogEntry>>;
}

/// Everything the handlers use.
pub(crate) trait Registry:
    Uploads
    + Parts
    + Blobs
    + Files
    + Keys
    + Buckets
    + StatsSource
    + AccessLog
    + Backups
    + Reconcile
    + Moves
{
}

impl<
        T: Uploads
            + Parts
            + Blobs
            + Files
            + Keys
            + Buckets
            + StatsSource
            + AccessLog
            + Backups
            + Reconcile
            + Moves,
    > Registry for T
{
}
