//! `buckets` and `routes`: where bytes go.

use locker_core::api::{Provider, Route, Transport, Verify};
use serde::Deserialize;
use wasm_bindgen::JsValue;

use super::{n, opt, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{BucketRow, Buckets, LogRecord, Reach};

const BUCKET_COLUMNS: &str = "id, name, provider, transport, binding, account_id, \
    jurisdiction, endpoint, region, path_style, active, created_at, verify";

/// The routes a tenant admin sees; `{scope}` is [`Reach::rows`] on `x`. A key limited to
/// some namespaces sees only their routes, not the tenant's default (`*`), which it may not set.
pub(crate) const ROUTES_SQL: &str =
    "SELECT namespace, bucket_id, updated_at FROM routes x WHERE {scope} ORDER BY namespace";

/// The bucket the tenant's namespace `?2` is routed to: its own route, else the tenant's
/// default (`*`). A namespace starts with a-z or 0-9, which sort after `*`, so in descending
/// order its own route comes first and the primary key (tenant, namespace) gives that order
/// without a sort (the query-plan test runs this string).
pub(crate) const ROUTE_SQL: &str = "SELECT bucket_id FROM routes \
     WHERE tenant = ?1 AND namespace IN (?2, '*') ORDER BY namespace DESC LIMIT 1";

/// A `buckets` row as D1 answers it; provider and transport parse here, once.
#[derive(Deserialize)]
struct Stored {
    id: String,
    name: String,
    provider: Provider,
    transport: Transport,
    binding: Option<String>,
    account_id: String,
    jurisdiction: String,
    endpoint: Option<String>,
    region: String,
    path_style: u8,
    active: u8,
    created_at: u64,
    verify: Verify,
}

impl From<Stored> for BucketRow {
    fn from(r: Stored) -> Self {
        Self {
            id: r.id,
            name: r.name,
            provider: r.provider,
            transport: r.transport,
            binding: r.binding,
            account_id: r.account_id,
            jurisdiction: r.jurisdiction,
            endpoint: r.endpoint,
            region: r.region,
            path_style: r.path_style != 0,
            verify: r.verify,
            active: r.active != 0,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

#[derive(Deserialize)]
pub(super) struct RouteTarget {
    pub(super) bucket_id: String,
}

impl Buckets for D1Registry {
    async fn bucket(&self, id: &str) -> ApiResult<Option<BucketRow>> {
        let row: Option<Stored> = self
            .first(
                "buckets",
                &format!("SELECT {BUCKET_COLUMNS} FROM buckets WHERE id = ?1"),
                &[s(id)],
            )
            .await?;
        Ok(row.map(BucketRow::from))
    }

    async fn bucket_count(&self) -> ApiResult<u64> {
        let row: Option<Count> = self
            .first("buckets", "SELECT COUNT(*) AS n FROM buckets", &[])
            .await?;
        Ok(row.map_or(0, |c| c.n))
    }

    async fn buckets(&self) -> ApiResult<Vec<BucketRow>> {
        let rows: Vec<Stored> = self
            .all(
                "buckets",
                &format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY created_at, id"),
                &[],
            )
            .await?;
        Ok(rows.into_iter().map(BucketRow::from).collect())
    }

    async fn bucket_named(&self, row: &BucketRow) -> ApiResult<Option<String>> {
        let twin: Option<IdRow> = self
            .first(
                "buckets",
                "SELECT id FROM buckets WHERE provider = ?1 AND account_id = ?2 \
                 AND jurisdiction = ?3 AND name = ?4",
                &[
                    s(row.provider.as_str()),
                    s(&row.account_id),
                    s(&row.jurisdiction),
                    s(&row.name),
                ],
            )
            .await?;
        Ok(twin.map(|t| t.id))
    }

    async fn register_bucket(&self, row: &BucketRow, log: &LogRecord) -> ApiResult<()> {
        let args: [JsValue; 13] = [
            s(&row.id),
            s(&row.name),
            s(row.provider.as_str()),
            s(row.transport.as_str()),
            opt(row.binding.as_deref()),
            s(&row.account_id),
            s(&row.jurisdiction),
            opt(row.endpoint.as_deref()),
            s(&row.region),
            n(u64::from(row.path_style)),
            n(row.created_at),
            n(u64::from(row.active)),
            s(row.verify.as_str()),
        ];
        self.batch(vec![
            self.stmt(
                &format!(
                    "INSERT INTO buckets ({BUCKET_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?11, ?13)"
                ),
                &args,
            )?,
            self.log_statement(log, "", &[])?,
        ])
        .await?;
        Ok(())
    }

    async fn set_bucket_active(&self, id: &str, active: bool, log: &LogRecord) -> ApiResult<()> {
        self.batch(vec![
            self.stmt(
                "UPDATE buckets SET active = ?2 WHERE id = ?1",
                &[s(id), n(u64::from(active))],
            )?,
            self.log_statement(log, "", &[])?,
        ])
        .await?;
        Ok(())
    }

    async fn set_route(
        &self,
        tenant: &str,
        namespace: &str,
        bucket_id: &str,
        log: &LogRecord,
    ) -> ApiResult<()> {
        self.batch(vec![
            self.register_default()?,
            self.stmt(
                "INSERT INTO routes (tenant, namespace, bucket_id, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (tenant, namespace) DO UPDATE SET bucket_id = excluded.bucket_id, \
                 updated_at = excluded.updated_at",
                &[s(tenant), s(namespace), s(bucket_id), n(self.now_ms)],
            )?,
            self.log_statement(log, "", &[])?,
        ])
        .await?;
        Ok(())
    }

    async fn routes(&self, reach: &Reach) -> ApiResult<Vec<Route>> {
        self.all(
            "routes",
            &ROUTES_SQL.replace("{scope}", reach.rows()),
            &reach.args(),
        )
        .await
    }

    async fn route(&self, tenant: &str, namespace: &str) -> ApiResult<Option<String>> {
        let route: Option<RouteTarget> = self
            .first("routes", ROUTE_SQL, &[s(tenant), s(namespace)])
            .await?;
        Ok(route.map(|r| r.bucket_id))
    }
}
