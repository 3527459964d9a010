//! `upload_parts`: the declared and stored parts of multipart uploads.

use super::{changed, n, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{PartDecl, PartRow, Parts};

/// An upload's parts by number (the query-plan test runs this string).
pub(crate) const PARTS_SQL: &str = "SELECT number, size, sha256, etag, stored_at \
     FROM upload_parts WHERE upload_id = ?1 ORDER BY number";

/// SQL condition: upload `?1` is pending and no complete runs.
const OPEN: &str = "EXISTS (SELECT 1 FROM uploads WHERE id = ?1 AND state = 'pending' \
     AND completing_at IS NULL)";

impl Parts for D1Registry {
    async fn declare_parts(&self, id: &str, parts: &[PartDecl]) -> ApiResult<bool> {
        // The first statement only tells whether the upload is open (an UPDATE counts the rows
        // it matched); the inserts carry the same condition, so the batch writes all or none.
        let mut statements = vec![self.stmt(
            "UPDATE uploads SET completing_at = NULL WHERE id = ?1 AND state = 'pending' \
             AND completing_at IS NULL",
            &[s(id)],
        )?];
        for p in parts {
            statements.push(self.stmt(
                &format!(
                    "INSERT INTO upload_parts (upload_id, number, size, sha256) \
                     SELECT ?1, ?2, ?3, ?4 WHERE {OPEN} \
                     ON CONFLICT (upload_id, number) DO UPDATE SET size = excluded.size, \
                       sha256 = excluded.sha256, \
                       etag = CASE WHEN upload_parts.sha256 = excluded.sha256 \
                              THEN upload_parts.etag END, \
                       stored_at = CASE WHEN upload_parts.sha256 = excluded.sha256 \
                              THEN upload_parts.stored_at END"
                ),
                &[s(id), n(u64::from(p.number)), n(p.size), s(&p.sha256)],
            )?);
        }
        let changes = self.batch(statements).await?;
        Ok(changed(&changes, 0))
    }

    async fn parts(&self, id: &str) -> ApiResult<Vec<PartRow>> {
        self.all("upload_parts", PARTS_SQL, &[s(id)]).await
    }

    async fn part_stored(
        &self,
        id: &str,
        number: u32,
        sha256: &str,
        etag: &str,
    ) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                &format!(
                    "UPDATE upload_parts SET etag = ?4, stored_at = ?5 \
                     WHERE upload_id = ?1 AND number = ?2 AND sha256 = ?3 AND {OPEN}"
                ),
                &[
                    s(id),
                    n(u64::from(number)),
                    s(sha256),
                    s(etag),
                    n(self.now_ms),
                ],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn lock_completion(&self, id: &str, stale_before_ms: u64) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE uploads SET completing_at = ?2 WHERE id = ?1 AND state = 'pending' \
                 AND (completing_at IS NULL OR completing_at < ?3)",
                &[s(id), n(self.now_ms), n(stale_before_ms)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn unlock_completion(&self, id: &str) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "UPDATE uploads SET completing_at = NULL WHERE id = ?1 AND completing_at = ?2",
            &[s(id), n(self.now_ms)],
        )?])
        .await?;
        Ok(())
    }

    async fn forget_parts(&self, id: &str) -> ApiResult<()> {
        self.batch(vec![self.stmt(
            "DELETE FROM upload_parts WHERE upload_id = ?1 \
             AND NOT EXISTS (SELECT 1 FROM uploads WHERE id = ?1 AND state = 'pending')",
            &[s(id)],
        )?])
        .await?;
        Ok(())
    }
}
