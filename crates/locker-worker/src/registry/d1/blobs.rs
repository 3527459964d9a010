//! `blobs`: a tenant's stored bytes.

use std::collections::HashMap;

use serde::Deserialize;

use super::buckets::{RouteTarget, ROUTE_SQL};
use super::{changed, first_row, opt, s, D1Registry};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{BlobRow, Blobs};

/// The tenant's verified bytes with a SHA-256 (the query-plan test runs this string).
pub(crate) const DEDUP_SQL: &str = "SELECT size, bucket_id, key FROM blobs \
     WHERE tenant = ?1 AND sha256 = ?2 AND verified = 1";

/// The tenant's verified bytes among the SHA-256s of the JSON array `?2`, in one read (the
/// query-plan test runs this string).
pub(crate) const DEDUP_MANY_SQL: &str = "SELECT sha256, size, bucket_id, key FROM blobs \
     WHERE tenant = ?1 AND verified = 1 AND sha256 IN (SELECT value FROM json_each(?2))";

#[derive(Deserialize)]
struct FoundBlob {
    sha256: String,
    size: u64,
    bucket_id: String,
    key: String,
}

#[derive(Deserialize)]
struct Found {
    #[allow(dead_code)]
    found: u8,
}

impl Blobs for D1Registry {
    async fn blob(&self, tenant: &str, sha256: &str) -> ApiResult<Option<BlobRow>> {
        self.first(
            "blobs",
            "SELECT size, bucket_id, key FROM blobs WHERE tenant = ?1 AND sha256 = ?2",
            &[s(tenant), s(sha256)],
        )
        .await
    }

    async fn verified_blob(&self, tenant: &str, sha256: &str) -> ApiResult<Option<BlobRow>> {
        self.first("blobs", DEDUP_SQL, &[s(tenant), s(sha256)])
            .await
    }

    async fn verified_blobs(
        &self,
        tenant: &str,
        sha256s: &[String],
    ) -> ApiResult<HashMap<String, BlobRow>> {
        if sha256s.is_empty() {
            return Ok(HashMap::new());
        }
        // One bound JSON array, not one parameter per digest: D1 binds at most 100 parameters.
        let list = serde_json::to_string(sha256s)
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("encoding digests: {e}")))?;
        let rows: Vec<FoundBlob> = self
            .all("blobs", DEDUP_MANY_SQL, &[s(tenant), s(&list)])
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let blob = BlobRow {
                    size: r.size,
                    bucket_id: r.bucket_id,
                    key: r.key,
                };
                (r.sha256, blob)
            })
            .collect())
    }

    async fn reserve_lookup(
        &self,
        tenant: &str,
        sha256: &str,
        namespace: &str,
    ) -> ApiResult<(Option<BlobRow>, Option<String>)> {
        let results = self
            .batch_results(vec![
                self.stmt(DEDUP_SQL, &[s(tenant), s(sha256)])?,
                self.stmt(ROUTE_SQL, &[s(tenant), s(namespace)])?,
            ])
            .await?;
        let blob = first_row(&results, 0, "blobs")?;
        let route: Option<RouteTarget> = first_row(&results, 1, "routes")?;
        Ok((blob, route.map(|r| r.bucket_id)))
    }

    async fn blob_claimed(
        &self,
        tenant: &str,
        sha256: &str,
        bucket_id: Option<&str>,
    ) -> ApiResult<bool> {
        let row: Option<Found> = self
            .first(
                "blobs",
                "SELECT 1 AS found WHERE \
                 EXISTS (SELECT 1 FROM blobs WHERE tenant = ?1 AND sha256 = ?2 \
                         AND (?3 IS NULL OR bucket_id = ?3)) \
                 OR EXISTS (SELECT 1 FROM uploads WHERE tenant = ?1 AND sha256 = ?2 \
                            AND (?3 IS NULL OR bucket_id = ?3) \
                            AND state IN ('pending', 'verifying'))",
                &[s(tenant), s(sha256), opt(bucket_id)],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn release_blob(&self, tenant: &str, sha256: &str) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                "DELETE FROM blobs WHERE tenant = ?1 AND sha256 = ?2 \
                 AND NOT EXISTS (SELECT 1 FROM files WHERE tenant = ?1 AND sha256 = ?2) \
                 AND NOT EXISTS (SELECT 1 FROM uploads WHERE tenant = ?1 AND sha256 = ?2 \
                                 AND state IN ('pending', 'verifying'))",
                &[s(tenant), s(sha256)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }
}
