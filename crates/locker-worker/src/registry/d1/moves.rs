//! `moves` and `move_problems`, and the batch that switches a blob to another bucket.

use locker_core::api::{MoveProblem, MoveProblemKind, MoveState};
use locker_core::moves::MAX_ATTEMPTS;

use super::log::LOG_ARGS;
use super::{changed, n, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{Left, LogRecord, MoveRow, Moves, MovingBlob};

const MOVE_COLUMNS: &str = "id, tenant, from_bucket, to_bucket, state, moved, moved_bytes, \
     routes_switched, created_at, updated_at, finished_at";

/// The blobs a move still tries: the tenant's in the source bucket, but not one too large nor
/// one whose attempts ran out (`?1` tenant, `?2` source bucket, `?3` move id, `?4` attempts).
const MOVABLE: &str = "FROM blobs b WHERE b.tenant = ?1 AND b.bucket_id = ?2 \
     AND NOT EXISTS (SELECT 1 FROM move_problems p WHERE p.move_id = ?3 AND p.sha256 = b.sha256 \
                     AND (p.problem = 'too_large' OR p.attempts >= ?4))";

impl Moves for D1Registry {
    async fn start_move(
        &self,
        row: &MoveRow,
        default_route: bool,
        log: &LogRecord,
    ) -> ApiResult<Option<u64>> {
        // Everything after the INSERT runs only if it inserted (`?1` the new move's id).
        let started = "EXISTS (SELECT 1 FROM moves WHERE id = ?1 AND created_at = ?2)";
        let mut statements = vec![
            self.register_default()?,
            self.stmt(
                "INSERT INTO moves (id, tenant, from_bucket, to_bucket, state, created_at, \
                 updated_at) SELECT ?1, ?2, ?3, ?4, 'running', ?5, ?5 WHERE NOT EXISTS \
                 (SELECT 1 FROM moves WHERE tenant = ?2 AND state = 'running')",
                &[
                    s(&row.id),
                    s(&row.tenant),
                    s(&row.from_bucket),
                    s(&row.to_bucket),
                    n(self.now_ms),
                ],
            )?,
            self.stmt(
                &format!(
                    "UPDATE routes SET bucket_id = ?3, updated_at = ?2 \
                     WHERE tenant = ?4 AND bucket_id = ?5 AND {started}"
                ),
                &[
                    s(&row.id),
                    n(self.now_ms),
                    s(&row.to_bucket),
                    s(&row.tenant),
                    s(&row.from_bucket),
                ],
            )?,
        ];
        if default_route {
            statements.push(self.stmt(
                &format!(
                    "INSERT OR IGNORE INTO routes (tenant, namespace, bucket_id, updated_at) \
                     SELECT ?3, '*', ?4, ?2 WHERE {started}"
                ),
                &[
                    s(&row.id),
                    n(self.now_ms),
                    s(&row.tenant),
                    s(&row.to_bucket),
                ],
            )?);
        }
        statements.push(self.log_statement(
            log,
            &format!(
                " AND EXISTS (SELECT 1 FROM moves WHERE id = ?{} AND created_at = ?{})",
                LOG_ARGS + 1,
                LOG_ARGS + 2
            ),
            &[s(&row.id), n(self.now_ms)],
        )?);
        let changes = self.batch(statements).await?;
        if !changed(&changes, 1) {
            return Ok(None);
        }
        let switched = (2..changes.len() - 1)
            .map(|i| changes.get(i).copied().unwrap_or(0) as u64)
            .sum::<u64>();
        if switched > 0 {
            self.batch(vec![self.stmt(
                "UPDATE moves SET routes_switched = ?2 WHERE id = ?1",
                &[s(&row.id), n(switched)],
            )?])
            .await?;
        }
        Ok(Some(switched))
    }

    async fn move_row(&self, id: &str) -> ApiResult<Option<MoveRow>> {
        self.first(
            "moves",
            &format!("SELECT {MOVE_COLUMNS} FROM moves WHERE id = ?1"),
            &[s(id)],
        )
        .await
    }

    async fn running_moves(&self, limit: u64) -> ApiResult<Vec<MoveRow>> {
        self.all(
            "moves",
            &format!(
                "SELECT {MOVE_COLUMNS} FROM moves WHERE state = 'running' \
                 ORDER BY created_at LIMIT ?1"
            ),
            &[n(limit)],
        )
        .await
    }

    async fn move_problems(&self, id: &str) -> ApiResult<Vec<MoveProblem>> {
        self.all(
            "move_problems",
            "SELECT sha256, size, problem, detail, attempts FROM move_problems \
             WHERE move_id = ?1 ORDER BY sha256",
            &[s(id)],
        )
        .await
    }

    async fn move_left(&self, row: &MoveRow) -> ApiResult<Left> {
        let left: Option<Left> = self
            .first(
                "moves",
                &format!(
                    "SELECT \
                     (SELECT COUNT(*) FROM blobs WHERE tenant = ?1 AND bucket_id = ?2) AS remaining, \
                     (SELECT COUNT(*) {MOVABLE}) AS movable, \
                     (SELECT COUNT(*) FROM uploads WHERE tenant = ?1 AND bucket_id = ?2 \
                      AND state IN ('pending', 'verifying')) AS pending_uploads"
                ),
                &[
                    s(&row.tenant),
                    s(&row.from_bucket),
                    s(&row.id),
                    n(MAX_ATTEMPTS),
                ],
            )
            .await?;
        Ok(left.unwrap_or_default())
    }

    async fn blobs_to_move(&self, row: &MoveRow, limit: u64) -> ApiResult<Vec<MovingBlob>> {
        self.all(
            "blobs",
            &format!(
                "SELECT b.sha256, b.size, b.key, b.content_type {MOVABLE} \
                 ORDER BY b.sha256 LIMIT ?5"
            ),
            &[
                s(&row.tenant),
                s(&row.from_bucket),
                s(&row.id),
                n(MAX_ATTEMPTS),
                n(limit),
            ],
        )
        .await
    }

    async fn switch_blob(
        &self,
        row: &MoveRow,
        blob: &MovingBlob,
        log: &LogRecord,
    ) -> ApiResult<bool> {
        // Every statement but the last is conditioned on the blob still being in the source;
        // the last moves it, so the condition holds for all of them or for none.
        let here = "EXISTS (SELECT 1 FROM blobs WHERE tenant = ?1 AND sha256 = ?2 \
                    AND bucket_id = ?3)";
        let args = [s(&row.tenant), s(&blob.sha256), s(&row.from_bucket)];
        let with = |extra: &[wasm_bindgen::JsValue]| {
            let mut all = args.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let statements = vec![
            self.stmt(
                &format!(
                    "UPDATE moves SET moved = moved + 1, moved_bytes = moved_bytes + ?5, \
                     updated_at = ?6 WHERE id = ?4 AND {here}"
                ),
                &with(&[s(&row.id), n(blob.size), n(self.now_ms)]),
            )?,
            self.stmt(
                &format!("DELETE FROM move_problems WHERE move_id = ?4 AND sha256 = ?2 AND {here}"),
                &with(&[s(&row.id)]),
            )?,
            self.stmt(
                &format!(
                    "UPDATE files SET bucket_id = ?4 WHERE tenant = ?1 AND sha256 = ?2 \
                     AND bucket_id = ?3 AND {here}"
                ),
                &with(&[s(&row.to_bucket)]),
            )?,
            self.log_statement(
                log,
                &format!(
                    " AND EXISTS (SELECT 1 FROM blobs WHERE tenant = ?{} AND sha256 = ?{} \
                     AND bucket_id = ?{})",
                    LOG_ARGS + 1,
                    LOG_ARGS + 2,
                    LOG_ARGS + 3
                ),
                &args,
            )?,
            self.stmt(
                "UPDATE blobs SET bucket_id = ?4, key = ?5 WHERE tenant = ?1 AND sha256 = ?2 \
                 AND bucket_id = ?3",
                &with(&[s(&row.to_bucket), s(&blob.key)]),
            )?,
        ];
        let changes = self.batch(statements).await?;
        Ok(changed(&changes, 4))
    }

    async fn move_problem(
        &self,
        id: &str,
        blob: &MovingBlob,
        problem: MoveProblemKind,
        detail: &str,
    ) -> ApiResult<()> {
        let attempts = u64::from(problem == MoveProblemKind::Failed);
        self.batch(vec![self.stmt(
            "INSERT INTO move_problems (move_id, sha256, size, problem, detail, attempts, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (move_id, sha256) DO UPDATE SET problem = excluded.problem, \
               detail = excluded.detail, attempts = attempts + excluded.attempts, \
               updated_at = excluded.updated_at",
            &[
                s(id),
                s(&blob.sha256),
                n(blob.size),
                s(problem.as_str()),
                s(detail),
                n(attempts),
                n(self.now_ms),
            ],
        )?])
        .await?;
        Ok(())
    }

    async fn finish_move(&self, id: &str) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "UPDATE moves SET state = ?2, finished_at = ?3, updated_at = ?3 \
             WHERE id = ?1 AND state = 'running'",
            &[s(id), s(MoveState::Done.as_str()), n(self.now_ms)],
        )?])
        .await?;
        Ok(())
    }
}
