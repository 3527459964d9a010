//! Keys, tokens, buckets, routes, the access log, stats and health.

use locker_core::api::{
    Bucket, BucketList, CreateKey, KeyCreated, KeyRevoked, LogPage, MintToken, RegisterBucket,
    RouteList, RouteSet, SetRoute, Stats, TokenMinted,
};
use locker_core::Health;
use reqwest::Method;

use crate::error::Result;
use crate::http::{Client, Replay};

/// A filter of `GET /v1/logs`; times are milliseconds since the epoch, as in the log's `ts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub operation: Option<String>,
    pub bucket_id: Option<String>,
    /// Rows older than this id (the previous page's `cursor`).
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// `GET /healthz`: the body (also on 503) with the status and the server's `Date` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHealth {
    pub status: u16,
    pub health: Health,
    /// The `Date` header as sent (RFC 9110 IMF-fixdate), for a clock-skew check.
    pub date: Option<String>,
}

impl Client {
    /// `POST /v1/keys`. Sent once: a retry could create a second key.
    pub async fn create_key(&self, request: &CreateKey) -> Result<KeyCreated> {
        self.call(
            Method::POST,
            self.url(["v1", "keys"]),
            Some(request),
            Replay::Once,
        )
        .await
    }

    /// `DELETE /v1/keys/{id}`.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyRevoked> {
        let url = self.url(["v1", "keys", id]);
        self.call(Method::DELETE, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `POST /v1/tokens`: a browser upload token.
    pub async fn mint_token(&self, request: &MintToken) -> Result<TokenMinted> {
        self.call(
            Method::POST,
            self.url(["v1", "tokens"]),
            Some(request),
            Replay::Once,
        )
        .await
    }

    /// `POST /v1/buckets` (deployment admin).
    pub async fn register_bucket(&self, request: &RegisterBucket) -> Result<Bucket> {
        self.call(
            Method::POST,
            self.url(["v1", "buckets"]),
            Some(request),
            Replay::Once,
        )
        .await
    }

    /// `GET /v1/buckets`.
    pub async fn buckets(&self) -> Result<BucketList> {
        let url = self.url(["v1", "buckets"]);
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `POST /v1/buckets/{id}/activate` or `.../deactivate`.
    pub async fn set_bucket_active(&self, id: &str, active: bool) -> Result<Bucket> {
        let verb = if active { "activate" } else { "deactivate" };
        let url = self.url(["v1", "buckets", id, verb]);
        self.call(Method::POST, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `PUT /v1/routes/{namespace}` (`*`: the tenant's default).
    pub async fn set_route(&self, namespace: &str, bucket_id: &str) -> Result<RouteSet> {
        let body = SetRoute {
            bucket_id: bucket_id.to_owned(),
        };
        let url = self.url(["v1", "routes", namespace]);
        self.call(Method::PUT, url, Some(&body), Replay::Idempotent)
            .await
    }

    /// `GET /v1/routes`.
    pub async fn routes(&self) -> Result<RouteList> {
        let url = self.url(["v1", "routes"]);
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// One page of `GET /v1/logs`, newest first.
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage> {
        let mut url = self.url(["v1", "logs"]);
        {
            let mut q = url.query_pairs_mut();
            let mut num = |name: &str, v: Option<u64>| {
                if let Some(v) = v {
                    q.append_pair(name, &v.to_string());
                }
            };
            num("since", query.since);
            num("until", query.until);
            num("limit", query.limit.map(u64::from));
            for (name, v) in [
                ("operation", &query.operation),
                ("bucket_id", &query.bucket_id),
                ("cursor", &query.cursor),
            ] {
                if let Some(v) = v {
                    q.append_pair(name, v);
                }
            }
        }
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `GET /v1/stats`.
    pub async fn stats(&self) -> Result<Stats> {
        let url = self.url(["v1", "stats"]);
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `GET /healthz`. A 503 is an answer here, not an error: its body says what failed.
    pub async fn health(&self) -> Result<ServerHealth> {
        let url = self.url(["healthz"]);
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(crate::Error::Network)?;
        let answer = crate::http::Answer::read(res)
            .await
            .map_err(crate::Error::Network)?;
        let status = answer.status.as_u16();
        if status != 200 && status != 503 {
            return Err(answer.refusal());
        }
        Ok(ServerHealth {
            status,
            health: answer.decode("GET /healthz")?,
            date: answer.date.clone(),
        })
    }
}
