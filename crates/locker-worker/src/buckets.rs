//! The bucket registry: the default bucket (the `BLOBS` binding, registered under its derived
//! id on first use), the admin API for more buckets, and which bucket a namespace uploads to.

use locker_core::api::{
    Bucket, BucketList, Provider, RouteList, RouteSet, SetRoute, Transport, Verify,
};
use locker_core::{BucketId, BucketIdentity, Namespace, Tenant};
use serde::Deserialize;

use crate::app::App;
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{BucketRow, Buckets, Reach};
use crate::store::{secret_names, Store};

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
    /// `read_back` (default) or `checksum`: how complete verifies a single PUT (see
    /// [`Verify`]); `s3` transport only.
    #[serde(default)]
    pub verify: Option<String>,
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

/// The answer for a bucket: its row, and for the `s3` transport the names (never the values)
/// of the secrets that hold its credentials.
fn public(row: &BucketRow) -> Bucket {
    let secrets = (row.transport == Transport::S3).then(|| {
        let (key, secret) = secret_names(&row.name);
        [key, secret]
    });
    Bucket {
        id: row.id.clone(),
        name: row.name.clone(),
        provider: row.provider,
        transport: row.transport,
        binding: row.binding.clone(),
        account_id: row.account_id.clone(),
        jurisdiction: row.jurisdiction.clone(),
        endpoint: row.endpoint.clone(),
        region: row.region.clone(),
        path_style: row.path_style,
        verify: (row.transport == Transport::S3).then_some(row.verify),
        active: row.active,
        created_at: row.created_at,
        secrets,
    }
}

/// The provider and transport a registration names; the transport defaults to the provider's
/// usual one.
fn kinds(body: &RegisterBucket) -> ApiResult<(Provider, Transport)> {
    let provider = match body.provider.as_str() {
        "r2" => Provider::R2,
        "s3" => Provider::S3,
        _ => return Err(invalid("provider must be 'r2' or 's3'")),
    };
    let transport = match (provider, body.transport.as_deref()) {
        (Provider::R2, None | Some("worker")) => Transport::Worker,
        (_, None | Some("s3")) => Transport::S3,
        (Provider::S3, Some(_)) => return Err(invalid("an s3 bucket has the s3 transport only")),
        (Provider::R2, Some(_)) => return Err(invalid("transport must be 'worker' or 's3'")),
    };
    Ok((provider, transport))
}

/// The verification policy a registration names: `read_back` unless an `s3` transport bucket
/// asks for `checksum`. A `worker` transport bucket has none to choose: R2 checks the SHA-256
/// of every write through the binding.
fn verify_policy(body: &RegisterBucket, transport: Transport) -> ApiResult<Verify> {
    let Some(name) = body.verify.as_deref() else {
        return Ok(Verify::ReadBack);
    };
    if transport == Transport::Worker {
        return Err(invalid(
            "verify applies to s3 transport buckets only; R2 checks every write through a binding itself",
        ));
    }
    match name {
        "read_back" => Ok(Verify::ReadBack),
        "checksum" => Ok(Verify::Checksum),
        _ => Err(invalid("verify must be 'read_back' or 'checksum'")),
    }
}

/// Where an r2 bucket is: its account (and jurisdiction), and the binding of the `worker`
/// transport or the S3 endpoint of the `s3` one.
fn r2_place(app: &App, body: &RegisterBucket, row: &mut BucketRow) -> ApiResult<()> {
    let account = body
        .account_id
        .clone()
        .ok_or_else(|| invalid("account_id is required for an r2 bucket"))?;
    let jurisdiction = row.jurisdiction.as_str();
    let endpoint =
        locker_core::s3::r2_endpoint(&account, jurisdiction).map_err(|e| invalid(e.to_string()))?;
    row.id = BucketId::derive(&BucketIdentity {
        account_id: &account,
        jurisdiction: (jurisdiction != "default").then_some(jurisdiction),
        name: &body.name,
    })
    .to_string();
    row.account_id = account;
    match row.transport {
        Transport::Worker => {
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
        Transport::S3 => row.endpoint = Some(endpoint),
    }
    Ok(())
}

/// Where an s3 bucket is: its server's endpoint, whose authority stands for the account.
fn s3_place(body: &RegisterBucket, row: &mut BucketRow) -> ApiResult<()> {
    let endpoint = body
        .endpoint
        .clone()
        .ok_or_else(|| invalid("endpoint is required for an s3 bucket"))?;
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let url = worker::Url::parse(&endpoint).map_err(|_| invalid("endpoint is not a URL"))?;
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
    if row.jurisdiction != "default" {
        return Err(invalid("jurisdiction applies to r2 buckets only"));
    }
    row.id = BucketId::derive_s3(&endpoint, &body.name).to_string();
    // The server's authority: two servers on one host (other ports) are other services, and
    // may each have a bucket of the same name.
    let host = url.host_str().unwrap_or_default();
    row.account_id = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    row.region = body.region.clone().unwrap_or_else(|| "us-east-1".into());
    row.endpoint = Some(endpoint);
    Ok(())
}

/// Builds the row a registration asks for, with its derived id.
fn registration(app: &App, body: RegisterBucket) -> ApiResult<BucketRow> {
    check_name(&body.name)?;
    let (provider, transport) = kinds(&body)?;
    let verify = verify_policy(&body, transport)?;
    let jurisdiction = body
        .jurisdiction
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut row = BucketRow {
        id: String::new(),
        name: body.name.clone(),
        provider,
        transport,
        binding: None,
        account_id: String::new(),
        jurisdiction,
        endpoint: None,
        region: "auto".into(),
        path_style: body.path_style.unwrap_or(true),
        verify,
        active: true,
        created_at: app.now_ms,
    };
    match provider {
        Provider::R2 => r2_place(app, &body, &mut row)?,
        Provider::S3 => s3_place(&body, &mut row)?,
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
        if provider == Provider::S3 {
            row.region = region.clone();
        }
    }
    Ok(row)
}

/// `POST /v1/buckets`: registers a bucket under its derived id (bootstrap admin only). An `s3`
/// transport bucket must have its two secrets set first; the answer names them.
pub(crate) async fn register(
    app: &App,
    who: &Principal,
    body: RegisterBucket,
    log: &mut LogEntry,
) -> ApiResult<Bucket> {
    require_bootstrap(who)?;
    let row = registration(app, body)?;
    log.bucket_id = Some(row.id.clone());
    // Refuses a bucket whose credentials or binding are missing before writing anything.
    Store::from_row(app, &row).map_err(|e| ApiError::new(ErrorKind::BucketRefused, e.message))?;
    if app.registry().bucket(&row.id).await?.is_some() {
        return Err(ApiError::new(
            ErrorKind::BucketExists,
            format!("bucket {} is already registered as {}", row.name, row.id),
        ));
    }
    // The registry's other uniqueness: one bucket per provider, account, jurisdiction and
    // name (an s3 bucket under another endpoint path of the same server).
    let twin = app.registry().bucket_named(&row).await?;
    if let Some(twin) = twin {
        return Err(ApiError::new(
            ErrorKind::BucketExists,
            format!(
                "a bucket {} of this account is already registered as {}",
                row.name, twin
            ),
        ));
    }
    app.registry()
        .register_bucket(&row, &log.record(app, None))
        .await?;
    log.written = true;
    Ok(public(&row))
}

/// `GET /v1/buckets` (any admin): every registered bucket; no credentials, only their names.
pub(crate) async fn list(app: &App, who: &Principal) -> ApiResult<BucketList> {
    who.require(Op::Admin, None)?;
    let rows = app.registry().buckets().await?;
    Ok(BucketList {
        buckets: rows.iter().map(public).collect(),
    })
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
) -> ApiResult<Bucket> {
    require_bootstrap(who)?;
    log.bucket_id = Some(id.to_owned());
    let Some(mut row) = app.registry().bucket(id).await? else {
        return Err(ApiError::not_found("no such bucket"));
    };
    if !active && id == app.bucket_id.as_str() {
        return Err(ApiError::new(
            ErrorKind::DefaultBucket,
            "the default bucket receives every namespace without a route and cannot be \
             deactivated; route namespaces elsewhere instead",
        ));
    }
    app.registry()
        .set_bucket_active(id, active, &log.record(app, None))
        .await?;
    log.written = true;
    row.active = active;
    Ok(public(&row))
}

/// `PUT /v1/routes/{namespace}` (tenant admin): new uploads to `namespace` (or, for `*`, to
/// every namespace without its own route) go to `bucket_id`.
pub(crate) async fn set_route(
    app: &App,
    who: &Principal,
    namespace: &str,
    body: SetRoute,
    log: &mut LogEntry,
) -> ApiResult<RouteSet> {
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
            app.registry()
                .bucket(&body.bucket_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such bucket"))?,
        )
    };
    if row.as_ref().is_some_and(|r| !r.active) {
        return Err(ApiError::new(
            ErrorKind::BucketInactive,
            "that bucket is deactivated",
        ));
    }
    let key = ns.as_ref().map_or("*", Namespace::as_str);
    app.registry()
        .set_route(
            tenant.as_str(),
            key,
            &body.bucket_id,
            &log.record(app, None),
        )
        .await?;
    log.written = true;
    Ok(RouteSet {
        namespace: key.to_owned(),
        bucket_id: body.bucket_id,
    })
}

/// `GET /v1/routes` (tenant admin): the tenant's routes and the deployment's default bucket.
pub(crate) async fn list_routes(app: &App, who: &Principal) -> ApiResult<RouteList> {
    who.require(Op::Admin, None)?;
    who.tenant()?;
    let reach = Reach::of(who)?;
    Ok(RouteList {
        routes: app.registry().routes(&reach).await?,
        default_bucket_id: app.bucket_id.to_string(),
    })
}

/// The bucket that receives a new upload of `tenant` to `namespace`, and its store.
pub(crate) async fn target(
    app: &App,
    tenant: &Tenant,
    namespace: &Namespace,
) -> ApiResult<(String, Store)> {
    let route = app
        .registry()
        .route(tenant.as_str(), namespace.as_str())
        .await?;
    routed(app, namespace, route).await
}

/// [`target`] once the namespace's `route` ([`crate::registry::Buckets::route`]) is known.
pub(crate) async fn routed(
    app: &App,
    namespace: &Namespace,
    route: Option<String>,
) -> ApiResult<(String, Store)> {
    let id = route.unwrap_or_else(|| app.bucket_id.to_string());
    if id == app.bucket_id.as_str() {
        return Ok((id, Store::Binding(app.blobs.clone())));
    }
    // Routes name their bucket by foreign key: only a registry edited by hand gets here.
    let row = app.registry().bucket(&id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::BucketMisconfigured,
            format!("namespace {namespace} is routed to bucket {id}, which is not registered"),
        )
    })?;
    if !row.active {
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
