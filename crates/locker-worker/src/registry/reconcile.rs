//! What the reconciler needs of a backend: the durable list of failed deletions, the problems
//! found with blobs' objects, and where its bounded passes go on from.

use serde::Deserialize;

use crate::error::ApiResult;

/// A deletion of stored bytes that failed, to be retried.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PendingDelete {
    pub bucket_id: String,
    pub key: String,
    pub tenant: String,
    pub sha256: String,
    pub attempts: u64,
}

/// A blob row as the object check reads it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckedBlob {
    pub rowid: u64,
    pub tenant: String,
    pub sha256: String,
    pub bucket_id: String,
    pub key: String,
    pub size: u64,
}

/// The reconciler's rows.
#[allow(async_fn_in_trait)]
pub(crate) trait Reconcile {
    /// Records a deletion to retry (again: the attempt count goes up).
    async fn queue_delete(
        &self,
        delete: &PendingDelete,
        error: &str,
        retry_at: u64,
    ) -> ApiResult<()>;

    /// Deletions due by now, oldest first, at most `limit`.
    async fn due_deletes(&self, limit: u64) -> ApiResult<Vec<PendingDelete>>;

    /// Removes a deletion from the list (done, or the bytes are claimed again).
    async fn drop_delete(&self, bucket_id: &str, key: &str) -> ApiResult<()>;

    /// How many deletions wait.
    async fn pending_delete_count(&self) -> ApiResult<u64>;

    /// Up to `limit` blobs after rowid `after`, in rowid order.
    async fn blobs_after(&self, after: u64, limit: u64) -> ApiResult<Vec<CheckedBlob>>;

    /// Records (`Some("missing" | "wrong_size")`) or clears (`None`) a blob's problem.
    async fn set_blob_problem(&self, blob: &CheckedBlob, problem: Option<&str>) -> ApiResult<()>;

    /// Blobs with a problem now: (missing, wrong size). A problem of a blob deleted since
    /// does not count.
    async fn blob_problem_counts(&self) -> ApiResult<(u64, u64)>;

    async fn cursor(&self, name: &str) -> ApiResult<Option<String>>;

    async fn set_cursor(&self, name: &str, value: &str) -> ApiResult<()>;
}
