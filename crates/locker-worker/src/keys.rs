//! API keys, browser upload tokens, and the admin's stats.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use locker_core::api::Operation;
use locker_core::hash::to_hex;
use locker_core::request::{self, MAX_KEY_TTL_S};
use locker_core::scope::{self, Grant};
use locker_core::sign::UploadTokenClaims;
use locker_core::validate::{self, ContentError};
use locker_core::{Namespace, Sha256Hex, Tenant};
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use crate::app::{n, random_bytes, s, App};
use crate::auth::{Op, Principal, Scopes, KEY_PREFIX, TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;

/// `POST /v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Required for the bootstrap admin; a tenant admin may only name its own tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    pub namespaces: Vec<String>,
    pub ops: Vec<Op>,
    #[serde(default)]
    pub max_size: Option<u64>,
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub label: Option<String>,
    /// Seconds until the key stops working (1 to [`MAX_KEY_TTL_S`]); without it, never.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

pub async fn create(
    app: &App,
    who: &Principal,
    body: CreateKey,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    who.require(Op::Admin, None)?;
    let tenant = match (&who.tenant, &body.tenant) {
        (None, Some(t)) => Tenant::parse(t)?,
        (None, None) => {
            return Err(ApiError::new(
                ErrorKind::MissingTenant,
                "name the key's tenant",
            ))
        }
        (Some(own), Some(t)) if t != own.as_str() => {
            return Err(ApiError::forbidden(
                "a tenant admin may only create keys for its own tenant",
            ))
        }
        (Some(own), _) => own.clone(),
    };
    log.tenant = Some(tenant.to_string());
    if body.namespaces.is_empty() || body.ops.is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidScopes,
            "namespaces and ops must not be empty",
        ));
    }
    for ns in &body.namespaces {
        if ns != "*" {
            Namespace::parse(ns)?;
        }
    }
    for t in body.types.iter().flatten() {
        if t != "*/*" && !t.ends_with("/*") {
            validate::content_type(t)?;
        }
    }
    if body.label.as_ref().is_some_and(|l| l.len() > 200) {
        return Err(ApiError::new(
            ErrorKind::InvalidLabel,
            "label must be at most 200 bytes",
        ));
    }
    let expires_at = match body.expires_in {
        None => None,
        Some(ttl) => Some(
            app.now_s()
                + request::expires_in(Some(ttl), MAX_KEY_TTL_S, MAX_KEY_TTL_S)
                    .map_err(|e| ApiError::new(ErrorKind::InvalidExpiresIn, e.to_string()))?,
        ),
    };
    // A limit left out is the creator's own (a tenant key's limits pass on to what it
    // creates); whatever is given must then lie within the creator's.
    let creator = (!who.is_bootstrap()).then_some(&who.scopes);
    let scopes = Scopes {
        namespaces: body.namespaces,
        ops: body.ops,
        max_size: body.max_size.or(creator.and_then(|c| c.max_size)),
        types: body.types.or_else(|| creator.and_then(|c| c.types.clone())),
    };
    let expires_at = expires_at.or(creator.and(who.expires_at));
    who.require_within(app, &Grant::of(&scopes, expires_at))?;
    let id = to_hex(&random_bytes(8)?);
    let secret = URL_SAFE_NO_PAD.encode(random_bytes(32)?);
    let hash = Sha256Hex::digest(secret.as_bytes()).to_string();
    let scopes_json = serde_json::to_string(&scopes)
        .map_err(|_| ApiError::new(ErrorKind::Internal, "scopes did not encode"))?;
    log.operation = Some(Operation::KeyCreate);
    log.key_id = Some(who.key_id.clone());
    app.batch(vec![
        app.stmt(
            "INSERT INTO api_keys (id, tenant, scopes, secret_hash, label, created_at, \
             expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                s(&id),
                s(tenant.as_str()),
                s(&scopes_json),
                s(&hash),
                crate::app::opt(body.label.as_deref()),
                n(app.now_ms),
                expires_at.map_or(JsValue::NULL, |at| n(at * 1000)),
            ],
        )?,
        log.statement(app, None)?,
    ])
    .await?;
    log.written = true;
    Ok(json!({
        "id": id,
        "key": format!("{KEY_PREFIX}{id}.{secret}"),
        "tenant": tenant.to_string(),
        "scopes": scopes,
        "expires_at": expires_at,
    }))
}

#[derive(Deserialize)]
struct TargetKey {
    scopes: String,
    #[serde(default)]
    expires_at: Option<u64>,
}

pub async fn revoke(app: &App, who: &Principal, id: &str, log: &mut LogEntry) -> ApiResult<Value> {
    who.require(Op::Admin, None)?;
    log.operation = Some(Operation::KeyRevoke);
    let tenant_filter = who.tenant.as_ref().map(|t| t.to_string());
    let target: Option<TargetKey> = app
        .first(
            "SELECT scopes, expires_at FROM api_keys \
             WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND revoked = 0",
            &[s(id), crate::app::opt(tenant_filter.as_deref())],
        )
        .await?;
    let Some(target) = target else {
        return Err(ApiError::not_found("no such active key"));
    };
    // Revoking is power over a key, as creating is: only over keys within the caller's own
    // scopes, so an admin of one namespace cannot switch off the tenant's wider keys.
    let scopes: Scopes = serde_json::from_str(&target.scopes)
        .map_err(|_| ApiError::new(ErrorKind::Internal, "stored scopes are unreadable"))?;
    who.require_within(
        app,
        &Grant::of(&scopes, target.expires_at.map(|ms| ms / 1000)),
    )?;
    let changes = app
        .batch(vec![app.stmt(
            "UPDATE api_keys SET revoked = 1, revoked_at = ?3 \
                 WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND revoked = 0",
            &[
                s(id),
                crate::app::opt(tenant_filter.as_deref()),
                n(app.now_ms),
            ],
        )?])
        .await?;
    if changes.first().copied().unwrap_or(0) == 0 {
        return Err(ApiError::not_found("no such active key"));
    }
    Ok(json!({ "id": id, "revoked": true }))
}

/// `POST /v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    pub namespace: String,
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default)]
    pub max_size: Option<u64>,
    #[serde(default)]
    pub types: Vec<String>,
    /// Seconds; 1 to 3600, default 600.
    #[serde(default)]
    pub ttl: Option<u64>,
}

pub fn mint(app: &App, who: &Principal, body: MintToken, log: &mut LogEntry) -> ApiResult<Value> {
    if who.token.is_some() {
        return Err(ApiError::forbidden("an upload token cannot mint tokens"));
    }
    let ns = Namespace::parse(&body.namespace)?;
    log.namespace = Some(ns.to_string());
    who.require(Op::Write, Some(&ns))?;
    let tenant = who.tenant()?.clone();
    if !body.path_prefix.is_empty() {
        // A prefix is a path or the start of one; it must not smuggle in what paths may not.
        locker_core::LogicalPath::parse(body.path_prefix.trim_end_matches('/'))?;
    }
    // Without a ttl, a token lives 10 minutes, or less when its key expires sooner.
    let default_ttl = who
        .expires_at
        .map_or(600, |at| at.saturating_sub(app.now_s()).clamp(1, 600));
    let ttl = request::expires_in(body.ttl, default_ttl, 3600)
        .map_err(|_| ApiError::new(ErrorKind::InvalidTtl, "ttl must be 1 to 3600 seconds"))?;
    let (key_max, key_types) = who.limits(app);
    for t in &body.types {
        let ok = t == "*/*" || t.ends_with("/*") || validate::content_type(t).is_ok();
        if !ok {
            return Err(ContentError::BadContentType.into());
        }
        if !scope::type_within(t, &key_types) {
            return Err(ContentError::TypeNotAllowed(t.clone()).into());
        }
    }
    let max = body.max_size.unwrap_or(key_max);
    // What the key holds itself; the Worker's own ceiling applies to every credential anyway.
    validate::size_within(max, key_max)?;
    let types = if body.types.is_empty() {
        key_types
    } else {
        body.types
    };
    let exp = app.now_s() + ttl;
    let namespaces = [ns.to_string()];
    who.require_within(
        app,
        &Grant {
            namespaces: &namespaces,
            ops: &[Op::Write],
            max_size: Some(max),
            types: Some(&types),
            expires_at: Some(exp),
        },
    )?;
    let claims = UploadTokenClaims {
        t: tenant,
        kid: who.key_id.clone(),
        ns,
        prefix: body.path_prefix.clone(),
        max,
        types: types.clone(),
        exp,
    };
    log.operation = Some(Operation::Token);
    Ok(json!({
        "token": format!("{TOKEN_PREFIX}{}", app.signer.sign(&claims)),
        "expires_at": exp,
        "namespace": claims.ns.to_string(),
        "path_prefix": claims.prefix,
        "max_size": max,
        "types": types,
    }))
}

/// Files and blobs per bucket, for `GET /v1/stats`.
#[derive(Deserialize, serde::Serialize)]
struct BucketCount {
    id: String,
    name: String,
    provider: String,
    transport: String,
    active: u8,
    files: u64,
    blobs: u64,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

/// `GET /v1/stats`: counts and integrity checks (orphans must be 0). A tenant admin sees its
/// tenant; the bootstrap admin sees everything.
pub async fn stats(app: &App, who: &Principal) -> ApiResult<Value> {
    who.require(Op::Admin, None)?;
    let tenant = who.tenant.as_ref().map(|t| t.to_string());
    let t = crate::app::opt(tenant.as_deref());
    let count = |sql: &'static str| {
        let t = t.clone();
        async move {
            let row: Option<Count> = app.first(sql, &[t]).await?;
            Ok::<u64, ApiError>(row.map_or(0, |c| c.n))
        }
    };
    let mut objects = 0u64;
    let mut cursor: Option<String> = None;
    let prefix = tenant
        .as_ref()
        .map(|t| format!("t/{t}/"))
        .unwrap_or_default();
    loop {
        let mut list = app.blobs.list().prefix(prefix.clone()).limit(1000);
        if let Some(c) = cursor.take() {
            list = list.cursor(c);
        }
        let page = list.execute().await?;
        objects += page.objects().len() as u64;
        match page.cursor().filter(|_| page.truncated()) {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(json!({
        "files": count("SELECT COUNT(*) AS n FROM files WHERE ?1 IS NULL OR tenant = ?1").await?,
        "blobs": count("SELECT COUNT(*) AS n FROM blobs WHERE ?1 IS NULL OR tenant = ?1").await?,
        "uploads": {
            "pending": count("SELECT COUNT(*) AS n FROM uploads WHERE (?1 IS NULL OR tenant = ?1) AND state = 'pending'").await?,
            "committed": count("SELECT COUNT(*) AS n FROM uploads WHERE (?1 IS NULL OR tenant = ?1) AND state = 'committed'").await?,
            "aborted": count("SELECT COUNT(*) AS n FROM uploads WHERE (?1 IS NULL OR tenant = ?1) AND state = 'aborted'").await?,
            "expired": count("SELECT COUNT(*) AS n FROM uploads WHERE (?1 IS NULL OR tenant = ?1) AND state = 'expired'").await?,
        },
        "objects": objects,
        "access_log": count("SELECT COUNT(*) AS n FROM access_log WHERE ?1 IS NULL OR tenant = ?1").await?,
        "buckets": app.all::<BucketCount>(
            "SELECT b.id, b.name, b.provider, b.transport, b.active, \
             (SELECT COUNT(*) FROM files f WHERE f.bucket_id = b.id AND (?1 IS NULL OR f.tenant = ?1)) AS files, \
             (SELECT COUNT(*) FROM blobs x WHERE x.bucket_id = b.id AND (?1 IS NULL OR x.tenant = ?1)) AS blobs \
             FROM buckets b ORDER BY b.created_at, b.id",
            std::slice::from_ref(&t),
        ).await?,
        "integrity": {
            "routes_without_bucket": count("SELECT COUNT(*) AS n FROM routes r WHERE (?1 IS NULL OR r.tenant = ?1) AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = r.bucket_id)").await?,
            "files_without_bucket": count("SELECT COUNT(*) AS n FROM files f WHERE (?1 IS NULL OR f.tenant = ?1) AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = f.bucket_id)").await?,
            "blobs_without_bucket": count("SELECT COUNT(*) AS n FROM blobs x WHERE (?1 IS NULL OR x.tenant = ?1) AND NOT EXISTS (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)").await?,
            "files_without_verified_blob": count("SELECT COUNT(*) AS n FROM files f WHERE (?1 IS NULL OR f.tenant = ?1) AND NOT EXISTS (SELECT 1 FROM blobs x WHERE x.tenant = f.tenant AND x.sha256 = f.sha256 AND x.verified = 1)").await?,
        },
    }))
}
