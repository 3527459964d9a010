//! The bucket registry: the default bucket (the `BLOBS` binding, registered under its derived
//! id on first use), the admin API for more buckets, and which bucket a namespace uploads to.

use locker_core::{BucketId, BucketIdentity, Namespace, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use crate::app::{n, opt, s, App};
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::keys::Reach;
use crate::log::LogEntry;
use crate::store::{bucket_row, secret_names, BucketRow, Store, BUCKET_COLUMNS};

// ---- the bucket registry's admin API and namespace routing ----

/// `POST /v1/buckets`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBucket {
    pub name: String,
    /// `r2` or `s3`.
    pub provider: String,
    /// `worker` (through an R2 binding) or `s3` (presigned, straight to storage). Default:
    /// `worker` for `r2`, `s3` for `s3`.
    #[serde(default)]
    pub transport: Option<String>,
    /// The R2 binding, for the `worker` transport.
    #[serde(default)]
    pub binding: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// The S3 endpoint of an `s3` provider, e.g. `https://s3.us-east-1.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// `https://host/bucket/key` (default) rather than `https://bucket.host/key`.
    #[serde(default)]
    pub path_style: Option<bool>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidBucket, message)
}

/// S3 bucket naming: 3-63 of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit.
fn check_name(name: &str) -> ApiResult<()> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name must be 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit",
        ))
    }
}

fn require_bootstrap(who: &Principal) -> ApiResult<()> {
    if who.is_bootstrap() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the deployment's admin key manages buckets",
        ))
    }
}

fn public(row: &BucketRow) -> Value {
    let mut v = json!(row);
    v["active"] = json!(row.active == 1);
    v["path_style"] = json!(row.path_style == 1);
    if row.transport == "s3" {
        let (key, secret) = secret_names(&row.name);
        v["secrets"] = json!([key, secret]);
    }
    v
}

/// Builds the row a registration asks for, with its derived id.
fn registration(app: &App, body: RegisterBucket) -> ApiResult<BucketRow> {
    check_name(&body.name)?;
    let transport = body.transport.clone().unwrap_or_else(|| {
        if body.provider == "r2" {
            "worker"
        } else {
            "s3"
        }
        .to_owned()
    });
    let jurisdiction = body
        .jurisdiction
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut row = BucketRow {
        id: String::new(),
        name: body.name.clone(),
        provider: body.provider.clone(),
        transport: transport.clone(),
        binding: None,
        account_id: String::new(),
        jurisdiction: jurisdiction.clone(),
        endpoint: None,
        region: "auto".into(),
        path_style: u8::from(body.path_style.unwrap_or(true)),
        active: 1,
        created_at: app.now_ms,
    };
    match (body.provider.as_str(), transport.as_str()) {
        ("r2", _) => {
            let account = body
                .account_id
                .clone()
                .ok_or_else(|| invalid("account_id is required for an r2 bucket"))?;
            let endpoint = locker_core::s3::r2_endpoint(&account, &jurisdiction)
                .map_err(|e| invalid(e.to_string()))?;
            row.id = BucketId::derive(&BucketIdentity {
                account_id: &account,
                jurisdiction: (jurisdiction != "default").then_some(jurisdiction.as_str()),
                name: &body.name,
            })
            .to_string();
            row.account_id = account;
            match transport.as_str() {
                "worker" => {
                    let binding = body
                        .binding
                        .clone()
                        .ok_or_else(|| invalid("binding is required for the worker transport"))?;
                    if app.env.bucket(&binding).is_err() {
                        return Err(invalid(format!(
                            "this Worker has no R2 binding named {binding} (see wrangler.toml)"
                        )));
                    }
                    row.binding = Some(binding);
                }
                "s3" => row.endpoint = Some(endpoint),
                _ => return Err(invalid("transport must be 'worker' or 's3'")),
            }
        }
        ("s3", "s3") => {
            let endpoint = body
                .endpoint
                .clone()
                .ok_or_else(|| invalid("endpoint is required for an s3 bucket"))?;
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            let url =
                worker::Url::parse(&endpoint).map_err(|_| invalid("endpoint is not a URL"))?;
            let plain = matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.query().is_none()
                && url.username().is_empty()
                && url.password().is_none();
            if !plain {
                return Err(invalid(
                    "endpoint must be http(s)://host[:port][/path] without query or credentials",
                ));
            }
            if jurisdiction != "default" {
                return Err(invalid("jurisdiction applies to r2 buckets only"));
            }
            row.id = BucketId::derive_s3(&endpoint, &body.name).to_string();
            // The server's authority: two servers on one host (other ports) are other
            // services, and may each have a bucket of the same name.
            let host = url.host_str().unwrap_or_default();
            row.account_id = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            row.region = body.region.clone().unwrap_or_else(|| "us-east-1".into());
            row.endpoint = Some(endpoint);
        }
        ("s3", _) => return Err(invalid("an s3 bucket has the s3 transport only")),
        _ => return Err(invalid("provider must be 'r2' or 's3'")),
    }
    if let Some(region) = &body.region {
        let ok = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !ok {
            return Err(invalid("region must be like 'us-east-1' or 'auto'"));
        }
        if body.provider == "s3" {
            row.region = region.clone();
        }
    }
    Ok(row)
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// `POST /v1/buckets`: registers a bucket under its derived id (bootstrap admin only). An `s3`
/// transport bucket must have its two secrets set first; the answer names them.
pub(crate) async fn register(
    app: &App,
    who: &Principal,
    body: RegisterBucket,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    require_bootstrap(who)?;
    let row = registration(app, body)?;
    log.bucket_id = Some(row.id.clone());
    // Refuses a bucket whose credentials or binding are missing before writing anything.
    Store::from_row(app, &row).map_err(|e| ApiError::new(ErrorKind::BucketRefused, e.message))?;
    if bucket_row(app, &row.id).await?.is_some() {
        return Err(ApiError::new(
            ErrorKind::BucketExists,
            format!("bucket {} is already registered as {}", row.name, row.id),
        ));
    }
    // The registry's other uniqueness: one bucket per provider, account, jurisdiction and
    // name (an s3 bucket under another endpoint path of the same server).
    let twin: Option<IdRow> = app
        .first(
            "SELECT id FROM buckets WHERE provider = ?1 AND account_id = ?2 \
             AND jurisdiction = ?3 AND name = ?4",
            &[
                s(&row.provider),
                s(&row.account_id),
                s(&row.jurisdiction),
                s(&row.name),
            ],
        )
        .await?;
    if let Some(twin) = twin {
        return Err(ApiError::new(
            ErrorKind::BucketExists,
            format!(
                "a bucket {} of this account is already registered as {}",
                row.name, twin.id
            ),
        ));
    }
    let args: [JsValue; 12] = [
        s(&row.id),
        s(&row.name),
        s(&row.provider),
        s(&row.transport),
        opt(row.binding.as_deref()),
        s(&row.account_id),
        s(&row.jurisdiction),
        opt(row.endpoint.as_deref()),
        s(&row.region),
        n(u64::from(row.path_style)),
        n(app.now_ms),
        n(1),
    ];
    app.batch(vec![
        app.stmt(
            &format!(
                "INSERT INTO buckets ({BUCKET_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?11)"
            ),
            &args,
        )?,
        log.statement(app, None)?,
    ])
    .await?;
    log.written = true;
    Ok(public(&row))
}

/// `GET /v1/buckets` (any admin): every registered bucket; no credentials, only their names.
pub(crate) async fn list(app: &App, who: &Principal) -> ApiResult<Value> {
    who.require(Op::Admin, None)?;
    let rows: Vec<BucketRow> = app
        .all(
            &format!("SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY created_at, id"),
            &[],
        )
        .await?;
    Ok(json!({ "buckets": rows.iter().map(public).collect::<Vec<_>>() }))
}

/// `POST /v1/buckets/{id}/activate|deactivate` (bootstrap admin): an inactive bucket takes no
/// new uploads; what it holds stays readable. The default bucket (this Worker's `BLOBS`) takes
/// every namespace without a route and cannot be deactivated.
pub(crate) async fn set_active(
    app: &App,
    who: &Principal,
    id: &str,
    active: bool,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    require_bootstrap(who)?;
    log.bucket_id = Some(id.to_owned());
    let Some(mut row) = bucket_row(app, id).await? else {
        return Err(ApiError::not_found("no such bucket"));
    };
    if !active && id == app.bucket_id.as_str() {
        return Err(ApiError::new(
            ErrorKind::DefaultBucket,
            "the default bucket receives every namespace without a route and cannot be \
             deactivated; route namespaces elsewhere instead",
        ));
    }
    app.batch(vec![
        app.stmt(
            "UPDATE buckets SET active = ?2 WHERE id = ?1",
            &[s(id), n(u64::from(active))],
        )?,
        log.statement(app, None)?,
    ])
    .await?;
    log.written = true;
    row.active = u8::from(active);
    Ok(public(&row))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRoute {
    pub bucket_id: String,
}

/// `PUT /v1/routes/{namespace}` (tenant admin): new uploads to `namespace` (or, for `*`, to
/// every namespace without its own route) go to `bucket_id`.
pub(crate) async fn set_route(
    app: &App,
    who: &Principal,
    namespace: &str,
    body: SetRoute,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    let ns = if namespace == "*" {
        // The default route moves every namespace without its own route: it takes an admin
        // of every namespace, not of one.
        who.require(Op::Admin, None)?;
        if !who.scopes.namespaces.iter().any(|n| n == "*") {
            return Err(ApiError::forbidden(
                "only a key for all namespaces ('*') may set the default route",
            ));
        }
        None
    } else {
        let ns = Namespace::parse(namespace)?;
        who.require(Op::Admin, Some(&ns))?;
        Some(ns)
    };
    let tenant = who.tenant()?;
    log.namespace = Some(namespace.to_owned());
    log.bucket_id = Some(body.bucket_id.clone());
    let row = if body.bucket_id == app.bucket_id.as_str() {
        None
    } else {
        Some(
            bucket_row(app, &body.bucket_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such bucket"))?,
        )
    };
    if row.as_ref().is_some_and(|r| r.active == 0) {
        return Err(ApiError::new(
            ErrorKind::BucketInactive,
            "that bucket is deactivated",
        ));
    }
    let key = ns.as_ref().map_or("*", Namespace::as_str);
    app.batch(vec![
        app.d1().register_default()?,
        app.stmt(
            "INSERT INTO routes (tenant, namespace, bucket_id, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant, namespace) DO UPDATE SET bucket_id = excluded.bucket_id, \
             updated_at = excluded.updated_at",
            &[s(tenant.as_str()), s(key), s(&body.bucket_id), n(app.now_ms)],
        )?,
        log.statement(app, None)?,
    ])
    .await?;
    log.written = true;
    Ok(json!({ "namespace": key, "bucket_id": body.bucket_id }))
}

#[derive(Deserialize, Serialize)]
struct RouteRow {
    namespace: String,
    bucket_id: String,
    updated_at: u64,
}

/// The routes a tenant admin sees; `{scope}` is [`Reach::rows`] on `x`. A key limited to
/// some namespaces sees only their routes, not the tenant's default (`*`), which it may not set.
pub(crate) const ROUTES_SQL: &str =
    "SELECT namespace, bucket_id, updated_at FROM routes x WHERE {scope} ORDER BY namespace";

/// `GET /v1/routes` (tenant admin): the tenant's routes and the deployment's default bucket.
pub(crate) async fn list_routes(app: &App, who: &Principal) -> ApiResult<Value> {
    who.require(Op::Admin, None)?;
    who.tenant()?;
    let reach = Reach::of(who)?;
    let rows: Vec<RouteRow> = app
        .all(&ROUTES_SQL.replace("{scope}", reach.rows()), &reach.args())
        .await?;
    Ok(json!({ "routes": rows, "default_bucket_id": app.bucket_id.as_str() }))
}

#[derive(Deserialize)]
struct RouteTarget {
    bucket_id: String,
}

/// The bucket that receives a new upload of `tenant` to `namespace`, and its store.
pub(crate) async fn target(
    app: &App,
    tenant: &Tenant,
    namespace: &Namespace,
) -> ApiResult<(String, Store)> {
    let route: Option<RouteTarget> = app
        .first(
            "SELECT bucket_id FROM routes WHERE tenant = ?1 AND namespace IN (?2, '*') \
             ORDER BY namespace = '*' LIMIT 1",
            &[s(tenant.as_str()), s(namespace.as_str())],
        )
        .await?;
    let id = route.map_or_else(|| app.bucket_id.to_string(), |r| r.bucket_id);
    if id == app.bucket_id.as_str() {
        return Ok((id, Store::Binding(app.blobs.clone())));
    }
    // Routes name their bucket by foreign key: only a registry edited by hand gets here.
    let row = bucket_row(app, &id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::BucketMisconfigured,
            format!("namespace {namespace} is routed to bucket {id}, which is not registered"),
        )
    })?;
    if row.active == 0 {
        return Err(ApiError::new(
            ErrorKind::BucketInactive,
            format!(
                "namespace {namespace} is routed to bucket {}, which is deactivated",
                row.name
            ),
        ));
    }
    Ok((id, Store::from_row(app, &row)?))
}
