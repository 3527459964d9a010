//! What moves of a tenant's files between buckets need of a backend: the `moves` rows, the
//! blobs still to move, and the one batch that switches a blob to its new bucket.

use locker_core::api::{MoveProblem, MoveProblemKind, MoveState};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::registry::LogRecord;

/// A `moves` row.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MoveRow {
    pub id: String,
    pub tenant: String,
    pub from_bucket: String,
    pub to_bucket: String,
    pub state: MoveState,
    pub moved: u64,
    pub moved_bytes: u64,
    pub routes_switched: u64,
    pub created_at: u64,
    pub updated_at: u64,
    pub finished_at: Option<u64>,
}

/// A blob a move copies.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MovingBlob {
    pub sha256: String,
    pub size: u64,
    pub key: String,
    pub content_type: String,
}

/// What is left of a move now.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct Left {
    /// The tenant's blobs in the source bucket.
    pub remaining: u64,
    /// Those of them the move still tries (not too large, attempts left).
    pub movable: u64,
    /// The tenant's pending or verifying reservations into the source bucket.
    pub pending_uploads: u64,
}

/// The rows of moves.
#[allow(async_fn_in_trait)]
pub(crate) trait Moves {
    /// Starts `row` (state `running`) unless a move of its tenant runs, and in the same batch
    /// switches the tenant's routes to the source to the target (with `default_route`, also
    /// adds a `*` route to the target where the tenant has none: its namespaces without a
    /// route went to the source, the default bucket), with the log row. `None`: another move
    /// of the tenant runs, nothing was written; else how many routes were switched.
    async fn start_move(
        &self,
        row: &MoveRow,
        default_route: bool,
        log: &LogRecord,
    ) -> ApiResult<Option<u64>>;

    /// The move `id`.
    async fn move_row(&self, id: &str) -> ApiResult<Option<MoveRow>>;

    /// Running moves, oldest first, at most `limit`.
    async fn running_moves(&self, limit: u64) -> ApiResult<Vec<MoveRow>>;

    /// The move's problems, by SHA-256.
    async fn move_problems(&self, id: &str) -> ApiResult<Vec<MoveProblem>>;

    /// What is left of the move.
    async fn move_left(&self, row: &MoveRow) -> ApiResult<Left>;

    /// Up to `limit` blobs of the move's tenant in its source bucket that it still tries, by
    /// SHA-256.
    async fn blobs_to_move(&self, row: &MoveRow, limit: u64) -> ApiResult<Vec<MovingBlob>>;

    /// One batch: if the blob is still in the move's source bucket, it and every file using
    /// it now name the target bucket, the move counts it, its problem (an earlier failed
    /// attempt) goes, and `log` is written. `false`: the blob was no longer there (released,
    /// or moved by another run), nothing was written.
    async fn switch_blob(
        &self,
        row: &MoveRow,
        blob: &MovingBlob,
        log: &LogRecord,
    ) -> ApiResult<bool>;

    /// Records (or counts one more attempt of) a blob's problem.
    async fn move_problem(
        &self,
        id: &str,
        blob: &MovingBlob,
        problem: MoveProblemKind,
        detail: &str,
    ) -> ApiResult<()>;

    /// Ends the move as `done` (if running).
    async fn finish_move(&self, id: &str) -> ApiResult<()>;
}
