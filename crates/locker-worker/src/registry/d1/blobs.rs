//! `blobs`: a tenant's stored bytes.

use serde::Deserialize;

use super::buckets::{RouteTarget, ROUTE_SQL};
use super::{changed, first_row, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{BlobRow, Blobs};

/// The tenant's verified bytes with a SHA-256 (the query-plan test runs this string).
pub(crate) const DEDUP_SQL: &str = "SELECT size, bucket_id, key FROM blobs \
     WHERE tenant = ?1 AND sha256 = ?2 AND verified = 1";

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

    async fn blob_claimed(&self, tenant: &str, sha256: &str) -> ApiResult<bool> {
        let row: Option<Found> = self
            .first(
                "blobs",
                "SELECT 1 AS found WHERE \
                 EXISTS (SELECT 1 FROM blobs WHERE tenant = ?1 AND sha256 = ?2) \
                 OR EXISTS (SELECT 1 FROM uploads WHERE tenant = ?1 AND sha256 = ?2 \
                            AND state IN ('pending', 'verifying'))",
                &[s(tenant), s(sha256)],
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
