//! The counts of `GET /v1/stats`, and what a [`Reach`] restricts in SQL.

use locker_core::api::{BucketStats, Integrity, Stats, UploadCounts};
use serde::Deserialize;
use wasm_bindgen::JsValue;

use super::{s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{Reach, StatsSource};

/// What [`Reach::rows`] restricts on the rows of a table aliased `x`, with `?1` the
/// tenant and `?2` the namespaces.
pub(crate) const REACH_TENANT: &str = "x.tenant = ?1";
pub(crate) const REACH_NAMESPACES: &str =
    "x.tenant = ?1 AND x.namespace IN (SELECT value FROM json_each(?2))";

impl Reach {
    /// The condition on the rows (alias `x`) of a table with a namespace column that this
    /// reach sees.
    pub(crate) fn rows(&self) -> &'static str {
        match self {
            Reach::Everything => "1 = 1",
            Reach::Tenant(_) => REACH_TENANT,
            Reach::Namespaces(..) => REACH_NAMESPACES,
        }
    }

    /// [`Reach::rows`], or `None` for a table without a namespace column (`namespaced`
    /// false), which a namespace-limited key may not count.
    pub(crate) fn condition(&self, namespaced: bool) -> Option<&'static str> {
        match self {
            Reach::Namespaces(..) if !namespaced => None,
            _ => Some(self.rows()),
        }
    }

    /// The parameters [`Reach::condition`] numbers.
    pub(crate) fn args(&self) -> Vec<JsValue> {
        match self {
            Reach::Everything => vec![],
            Reach::Tenant(t) => vec![s(t)],
            Reach::Namespaces(t, ns) => vec![s(t), s(ns)],
        }
    }
}

/// One count of `GET /v1/stats`: where it goes in the answer, its statement with `{scope}`
/// for [`Reach::condition`] on the table aliased `x`, and whether that table has a namespace.
pub(crate) struct StatCount {
    pub pointer: &'static str,
    pub template: &'static str,
    pub namespaced: bool,
}

const fn stat(pointer: &'static str, template: &'static str, namespaced: bool) -> StatCount {
    StatCount {
        pointer,
        template,
        namespaced,
    }
}

/// Every count of `GET /v1/stats`. Each is one index search per tenant (the query-plan test
/// checks it): the condition is chosen before the statement is prepared, since SQLite plans
/// `?1 IS NULL OR tenant = ?1` as a scan of the whole table.
pub(crate) const STAT_COUNTS: &[StatCount] = &[
    stat("/files", "SELECT COUNT(*) AS n FROM files x WHERE {scope}", true),
    stat("/blobs", "SELECT COUNT(*) AS n FROM blobs x WHERE {scope}", false),
    stat(
        "/uploads/pending",
        "SELECT COUNT(*) AS n FROM uploads x WHERE {scope} AND x.state = 'pending'",
        true,
    ),
    stat(
        "/uploads/committed",
        "SELECT COUNT(*) AS n FROM uploads x WHERE {scope} AND x.state = 'committed'",
        true,
    ),
    stat(
        "/uploads/aborted",
        "SELECT COUNT(*) AS n FROM uploads x WHERE {scope} AND x.state = 'aborted'",
        true,
    ),
    stat(
        "/uploads/expired",
        "SELECT COUNT(*) AS n FROM uploads x WHERE {scope} AND x.state = 'expired'",
        true,
    ),
    stat("/access_log", "SELECT COUNT(*) AS n FROM access_log x WHERE {scope}", true),
    stat(
        "/integrity/routes_without_bucket",
        "SELECT COUNT(*) AS n FROM routes x WHERE {scope} \
         AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)",
        true,
    ),
    stat(
        "/integrity/files_without_bucket",
        "SELECT COUNT(*) AS n FROM files x WHERE {scope} \
         AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)",
        true,
    ),
    stat(
        "/integrity/blobs_without_bucket",
        "SELECT COUNT(*) AS n FROM blobs x WHERE {scope} \
         AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)",
        false,
    ),
    stat(
        "/integrity/files_without_verified_blob",
        "SELECT COUNT(*) AS n FROM files x WHERE {scope} AND NOT EXISTS \
         (SELECT 1 FROM blobs y WHERE y.tenant = x.tenant AND y.sha256 = x.sha256 AND y.verified = 1)",
        true,
    ),
];

/// Files and blobs per registered bucket; `{files}` and `{blobs}` become a scoped count
/// ([`bucket_count`]) or `NULL` where the reach may not count.
pub(crate) const STATS_BUCKETS: &str = "SELECT b.id, b.name, b.provider, b.transport, b.active, \
     {files} AS files, {blobs} AS blobs FROM buckets b ORDER BY b.created_at, b.id";

/// The count of `table`'s rows in bucket `b` this reach sees, or `NULL`.
pub(crate) fn bucket_count(table: &str, condition: Option<&str>) -> String {
    condition.map_or_else(
        || "NULL".to_owned(),
        |c| format!("(SELECT COUNT(*) FROM {table} x WHERE x.bucket_id = b.id AND {c})"),
    )
}

/// The statement of `GET /v1/stats`'s per-bucket counts for `reach`.
pub(crate) fn stats_buckets_sql(reach: &Reach) -> String {
    STATS_BUCKETS
        .replace("{files}", &bucket_count("files", reach.condition(true)))
        .replace("{blobs}", &bucket_count("blobs", reach.condition(false)))
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

impl StatsSource for D1Registry {
    async fn stats(&self, reach: &Reach) -> ApiResult<Stats> {
        let args = reach.args();
        let mut counts: Vec<(&str, u64)> = Vec::new();
        for count in STAT_COUNTS {
            let Some(condition) = reach.condition(count.namespaced) else {
                continue;
            };
            let sql = count.template.replace("{scope}", condition);
            let row: Option<Count> = self.first("count", &sql, &args).await?;
            counts.push((count.pointer, row.map_or(0, |c| c.n)));
        }
        let get = |pointer: &str| counts.iter().find(|(p, _)| *p == pointer).map(|(_, n)| *n);
        let buckets: Vec<BucketStats> = self
            .all("buckets", &stats_buckets_sql(reach), &args)
            .await?;
        Ok(Stats {
            files: get("/files").unwrap_or(0),
            blobs: get("/blobs"),
            uploads: UploadCounts {
                pending: get("/uploads/pending").unwrap_or(0),
                committed: get("/uploads/committed").unwrap_or(0),
                aborted: get("/uploads/aborted").unwrap_or(0),
                expired: get("/uploads/expired").unwrap_or(0),
            },
            objects: None,
            access_log: get("/access_log").unwrap_or(0),
            buckets,
            integrity: Integrity {
                routes_without_bucket: get("/integrity/routes_without_bucket").unwrap_or(0),
                files_without_bucket: get("/integrity/files_without_bucket").unwrap_or(0),
                blobs_without_bucket: get("/integrity/blobs_without_bucket"),
                files_without_verified_blob: get("/integrity/files_without_verified_blob")
                    .unwrap_or(0),
            },
            storage: None,
        })
    }
}
