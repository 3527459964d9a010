//! Keys, tokens, buckets, routes, the access log, stats and health.

use locker_core::api::{
    Bucket, BucketList, CreateKey, KeyCreated, KeyInfo, KeyList, KeyRevoked, LogPage, MintToken,
    RegisterBucket, RouteList, RouteSet, SetRoute, Stats, TokenMinted,
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

    /// `GET /v1/keys`: one page of the keys the caller may see, ordered by id.
    pub async fn keys_page(&self, cursor: Option<&str>, limit: Option<u32>) -> Result<KeyList> {
        let mut url = self.url(["v1", "keys"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// Every key the caller may see, following the cursor.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.keys_page(cursor.as_deref(), Some(1000)).await?;
            keys.extend(page.keys);
            // A cursor that does not move would loop forever; the server never sends one.
            match page.cursor {
                Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => return Ok(keys),
            }
        }
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

/// What a server answered to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-*`): the headers a browser decides by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preflight {
    pub status: u16,
    pub allow_origin: Option<String>,
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
}

impl Preflight {
    /// Whether a browser at `origin` may send `method` with `headers` (names, lowercase) after
    /// this answer. A `*` allows any origin or header; method and header lists are
    /// comma-separated and case-insensitive.
    pub fn allows(&self, origin: &str, method: &str, headers: &[&str]) -> bool {
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let origin_ok = matches!(self.allow_origin.as_deref(), Some(o) if o == "*" || o == origin);
        let methods = list(&self.allow_methods);
        let allowed = list(&self.allow_headers);
        (200..300).contains(&self.status)
            && origin_ok
            && methods
                .iter()
                .any(|m| m == "*" || m.eq_ignore_ascii_case(method))
            && headers.iter().all(|h| {
                allowed
                    .iter()
                    .any(|a| a == "*" || a.eq_ignore_ascii_case(h))
            })
    }
}

impl Client {
    /// Sends a CORS preflight to `url` (a storage endpoint: no key is sent).
    pub async fn cors_preflight(
        &self,
        url: &str,
        origin: &str,
        method: &str,
        headers: &[&str],
    ) -> Result<Preflight> {
        let res = self
            .http
            .request(Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers.join(","))
            .send()
            .await
            .map_err(crate::Error::Network)?;
        let get = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Preflight {
            status: res.status().as_u16(),
            allow_origin: get("access-control-allow-origin"),
            allow_methods: get("access-control-allow-methods"),
            allow_headers: get("access-control-allow-headers"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Preflight;

    #[test]
    fn preflight_rules() {
        let headers = ["content-type", "if-none-match", "x-amz-checksum-sha256"];
        let good = Preflight {
            status: 204,
            allow_origin: Some("https://app.example".into()),
            allow_methods: Some("GET, PUT".into()),
            allow_headers: Some("Content-Type,If-None-Match, x-amz-checksum-sha256".into()),
        };
        assert!(good.allows("https://app.example", "PUT", &headers));
        assert!(!good.allows("https://evil.example", "PUT", &headers));
        assert!(!good.allows("https://app.example", "DELETE", &headers));
        let missing = Preflight {
            allow_headers: Some("content-type".into()),
            ..good.clone()
        };
        assert!(!missing.allows("https://app.example", "PUT", &headers));
        let star = Preflight {
            allow_origin: Some("*".into()),
            allow_headers: Some("*".into()),
            ..good.clone()
        };
        assert!(star.allows("https://x.example", "PUT", &headers));
        assert!(!Preflight::default().allows("https://app.example", "PUT", &headers));
    }
}
