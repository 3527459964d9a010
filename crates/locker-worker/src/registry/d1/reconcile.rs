//! `pending_deletes`, `blob_problems` and `reconcile_cursors`.

use serde::Deserialize;

use super::{n, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{CheckedBlob, PendingDelete, Reconcile};

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct Counts {
    missing: u64,
    wrong_size: u64,
}

#[derive(Deserialize)]
struct Value {
    value: String,
}

impl Reconcile for D1Registry {
    async fn queue_delete(&self, d: &PendingDelete, error: &str, retry_at: u64) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "INSERT INTO pending_deletes \
             (bucket_id, key, tenant, sha256, attempts, last_error, created_at, next_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (bucket_id, key) DO UPDATE SET attempts = excluded.attempts, \
               last_error = excluded.last_error, next_at = excluded.next_at",
            &[
                s(&d.bucket_id),
                s(&d.key),
                s(&d.tenant),
                s(&d.sha256),
                n(d.attempts),
                s(error),
                n(self.now_ms),
                n(retry_at),
            ],
        )?])
        .await?;
        Ok(())
    }

    async fn due_deletes(&self, limit: u64) -> ApiResult<Vec<PendingDelete>> {
        self.all(
            "pending_deletes",
            "SELECT bucket_id, key, tenant, sha256, attempts FROM pending_deletes \
             WHERE next_at <= ?1 ORDER BY next_at LIMIT ?2",
            &[n(self.now_ms), n(limit)],
        )
        .await
    }

    async fn drop_delete(&self, bucket_id: &str, key: &str) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "DELETE FROM pending_deletes WHERE bucket_id = ?1 AND key = ?2",
            &[s(bucket_id), s(key)],
        )?])
        .await?;
        Ok(())
    }

    async fn pending_delete_count(&self) -> ApiResult<u64> {
        let row: Option<Count> = self
            .first(
                "pending_deletes",
                "SELECT COUNT(*) AS n FROM pending_deletes",
                &[],
            )
            .await?;
        Ok(row.map_or(0, |r| r.n))
    }

    async fn blobs_after(&self, after: u64, limit: u64) -> ApiResult<Vec<CheckedBlob>> {
        self.all(
            "blobs",
            "SELECT rowid, tenant, sha256, bucket_id, key, size FROM blobs \
             WHERE rowid > ?1 AND verified = 1 ORDER BY rowid LIMIT ?2",
            &[n(after), n(limit)],
        )
        .await
    }

    async fn set_blob_problem(&self, b: &CheckedBlob, problem: Option<&str>) -> ApiResult<()> {
        let statement = match problem {
            Some(problem) => self.stmt(
                "INSERT INTO blob_problems (tenant, sha256, bucket_id, problem, found_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, sha256) DO UPDATE SET \
                 bucket_id = excluded.bucket_id, problem = excluded.problem, \
                 found_at = excluded.found_at",
                &[
                    s(&b.tenant),
                    s(&b.sha256),
                    s(&b.bucket_id),
                    s(problem),
                    n(self.now_ms),
                ],
            )?,
            None => self.stmt(
                "DELETE FROM blob_problems WHERE tenant = ?1 AND sha256 = ?2",
                &[s(&b.tenant), s(&b.sha256)],
            )?,
        };
        self.batch(vec![statement]).await?;
        Ok(())
    }

    async fn blob_problem_counts(&self) -> ApiResult<(u64, u64)> {
        let row: Option<Counts> = self
            .first(
                "blob_problems",
                "SELECT COALESCE(SUM(p.problem = 'missing'), 0) AS missing, \
                 COALESCE(SUM(p.problem = 'wrong_size'), 0) AS wrong_size \
                 FROM blob_problems p WHERE EXISTS \
                 (SELECT 1 FROM blobs b WHERE b.tenant = p.tenant AND b.sha256 = p.sha256)",
                &[],
            )
            .await?;
        Ok(row.map_or((0, 0), |r| (r.missing, r.wrong_size)))
    }

    async fn cursor(&self, name: &str) -> ApiResult<Option<String>> {
        let row: Option<Value> = self
            .first(
                "reconcile_cursors",
                "SELECT value FROM reconcile_cursors WHERE name = ?1",
                &[s(name)],
            )
            .await?;
        Ok(row.map(|r| r.value))
    }

    async fn set_cursor(&self, name: &str, value: &str) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "INSERT INTO reconcile_cursors (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[s(name), s(value)],
        )?])
        .await?;
        Ok(())
    }
}
