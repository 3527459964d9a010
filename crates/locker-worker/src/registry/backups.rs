//! What registry backups need of a backend: the `backups` rows that carry a backup across
//! runs, and pages of every table in a stable order.

use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiResult;

/// A `backups` row: a backup being written over one or more runs, or a complete one.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BackupRow {
    pub id: String,
    /// `running`, `complete`, or `abandoned` (stuck, its objects being deleted).
    pub state: String,
    pub started_at: u64,
    pub finished_at: Option<u64>,
    /// Index in `locker_core::backup::TABLES` of the table being read.
    pub step: u64,
    /// The last rowid of that table already written to a part (for `upload_parts`, the part
    /// number, with the upload id in `after_key`).
    pub after: u64,
    /// '' except for a table paged by a text key (`upload_parts`).
    pub after_key: String,
    /// When the backup last wrote a page, or started (unix ms); `None` only for rows written
    /// before migration 0009 set it.
    pub progress_at: Option<u64>,
    /// The manifest so far (JSON of `locker_core::backup::Manifest`).
    pub manifest: String,
}

impl BackupRow {
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            step: self.step,
            after: self.after,
            after_key: self.after_key.clone(),
        }
    }

    /// Unix ms of the last page written (or of the start).
    pub(crate) fn last_progress(&self) -> u64 {
        self.progress_at.unwrap_or(self.started_at)
    }
}

/// Where a backup stands: the table (`step`, an index in `locker_core::backup::TABLES`) and
/// the key of the last row written from it (`after`, and `after_key` for a table paged by a text
/// key; 0 and '' before its first row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub step: u64,
    pub after: u64,
    pub after_key: String,
}

impl Cursor {
    /// The start of the next table.
    pub(crate) fn next_table(&self) -> Self {
        Self {
            step: self.step + 1,
            ..Self::default()
        }
    }
}

/// One page of a table, in key order (rowid, or the primary key of `upload_parts`).
pub(crate) struct Page {
    /// The rows, each a JSON object of its columns and `_rowid`.
    pub rows: Vec<Value>,
    /// For a page of `files`: the blobs those files use, read in the same transaction.
    pub blobs: Vec<Value>,
    /// The key of the last row (`after`, `after_key` of a [`Cursor`]); `None` for an empty
    /// page (the table is done).
    pub last: Option<(u64, String)>,
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
        expected: &Cursor,
        progress: &Cursor,
        manifest: &str,
        complete: bool,
    ) -> ApiResult<bool>;

    /// Marks a running backup `abandoned` if it still is running and its progress is still
    /// `last_progress` (a run that moved it meanwhile wins). `false`: nothing changed.
    async fn abandon_backup(&self, id: &str, last_progress: u64) -> ApiResult<bool>;

    /// Abandoned backups whose objects are still being deleted, oldest first.
    async fn abandoned_backups(&self) -> ApiResult<Vec<BackupRow>>;

    /// Removes a backup's row (retention, after its objects are deleted).
    async fn forget_backup(&self, id: &str) -> ApiResult<()>;

    /// Deletes up to `limit` access-log rows with id at most `up_to` (rows a complete backup
    /// holds) and older than `before_ms`; returns how many went.
    async fn prune_access_log(&self, up_to: u64, before_ms: u64, limit: u64) -> ApiResult<u64>;

    /// Up to `limit` rows of `table` after the row `after` (a [`Cursor`]'s `after`,
    /// `after_key`); for `access_log` only up to `high_water`.
    async fn page(
        &self,
        table: &str,
        after: (u64, &str),
        limit: u64,
        high_water: u64,
    ) -> ApiResult<Page>;
}
