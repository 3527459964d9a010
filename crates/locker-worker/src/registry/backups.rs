//! What registry backups need of a backend: the `backups` rows that carry a backup across
//! runs, and pages of every table in a stable order.

use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiResult;

/// A `backups` row: a backup being written over one or more runs, or a complete one.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BackupRow {
    pub id: String,
    /// `running` or `complete`.
    pub state: String,
    pub started_at: u64,
    pub finished_at: Option<u64>,
    /// Index in `locker_core::backup::TABLES` of the table being read.
    pub step: u64,
    /// The last rowid of that table already written to a part.
    pub after: u64,
    /// The manifest so far (JSON of `locker_core::backup::Manifest`).
    pub manifest: String,
}

/// One page of a table, in rowid order.
pub(crate) struct Page {
    /// The rows, each a JSON object of its columns and `_rowid`.
    pub rows: Vec<Value>,
    /// For a page of `files`: the blobs those files use, read in the same transaction.
    pub blobs: Vec<Value>,
    /// The rowid of the last row; `None` for an empty page (the table is done).
    pub last: Option<u64>,
}

/// Backups' rows and reads.
#[allow(async_fn_in_trait)]
pub(crate) trait Backups {
    /// The last migration applied (`0006_backups`).
    async fn schema_version(&self) -> ApiResult<String>;

    /// The access log's highest row id now (0 when empty).
    async fn access_log_high_water(&self) -> ApiResult<u64>;

    /// The backup being written, if any (at most one runs at a time).
    async fn running_backup(&self) -> ApiResult<Option<BackupRow>>;

    async fn backup(&self, id: &str) -> ApiResult<Option<BackupRow>>;

    /// Complete backups, newest first.
    async fn complete_backups(&self) -> ApiResult<Vec<BackupRow>>;

    /// Starts backup `id` unless one is running. `false`: one is, nothing was written.
    async fn start_backup(&self, id: &str, manifest: &str) -> ApiResult<bool>;

    /// Records the progress (`(step, after)`) of a running backup whose progress was
    /// `expected`, and marks it complete if `complete`. `false`: another run moved it first.
    async fn save_backup(
        &self,
        id: &str,
        expected: (u64, u64),
        progress: (u64, u64),
        manifest: &str,
        complete: bool,
    ) -> ApiResult<bool>;

    /// Removes a backup's row (retention, after its objects are deleted).
    async fn forget_backup(&self, id: &str) -> ApiResult<()>;

    /// Deletes up to `limit` access-log rows with id at most `up_to` (rows a complete backup
    /// holds) and older than `before_ms`; returns how many went.
    async fn prune_access_log(&self, up_to: u64, before_ms: u64, limit: u64) -> ApiResult<u64>;

    /// Up to `limit` rows of `table` after rowid `after`; for `access_log` only up to
    /// `high_water`.
    async fn page(&self, table: &str, after: u64, limit: u64, high_water: u64) -> ApiResult<Page>;
}
