//! API keys, browser upload tokens, and the admin's stats.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use locker_core::api::{
    CreateKey, KeyCreated, KeyList, KeyRevoked, MintToken, Operation, Stats, TokenMinted,
};
use locker_core::hash::to_hex;
use locker_core::request::{self, MAX_KEY_TTL_S};
use locker_core::scope::{self, Grant};
use locker_core::sign::UploadTokenClaims;
use locker_core::validate::{self, ContentError};
use locker_core::{Namespace, Sha256Hex, Tenant};

use crate::app::{random_bytes, App};
use crate::auth::{Op, Principal, Scopes, KEY_PREFIX, TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::params::Params;
use crate::registry::{Keys, NewKey, Reach, StatsSource};

/// The tenant a new key is for: the one named (bootstrap admin), or the creator's own.
fn key_tenant(who: &Principal, named: Option<&str>) -> ApiResult<Tenant> {
    match (&who.tenant, named) {
        (None, Some(t)) => Ok(Tenant::parse(t)?),
        (None, None) => Err(ApiError::new(
            ErrorKind::MissingTenant,
            "name the key's tenant",
        )),
        (Some(own), Some(t)) if t != own.as_str() => Err(ApiError::forbidden(
            "a tenant admin may only create keys for its own tenant",
        )),
        (Some(own), _) => Ok(own.clone()),
    }
}

/// The fields of a key request, each valid on its own (the scopes' bounds come after).
fn check_key_request(body: &CreateKey) -> ApiResult<()> {
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
    Ok(())
}

/// `POST /v1/keys`: a key within the creator's own scopes; its secret is answered once.
pub(crate) async fn create(
    app: &App,
    who: &Principal,
    body: CreateKey,
    log: &mut LogEntry,
) -> ApiResult<KeyCreated> {
    who.require(Op::Admin, None)?;
    let tenant = key_tenant(who, body.tenant.as_deref())?;
    log.tenant = Some(tenant.to_string());
    check_key_request(&body)?;
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
    log.operation = Some(Operation::KeyCreate);
    log.key_id = Some(who.key_id.clone());
    app.registry()
        .create_key(
            &NewKey {
                id: &id,
                tenant: tenant.as_str(),
                scopes: &scopes,
                secret_hash: &hash,
                label: body.label.as_deref(),
                expires_at: expires_at.map(|at| at * 1000),
            },
            &log.record(app, None),
        )
        .await?;
    log.written = true;
    Ok(KeyCreated {
        key: format!("{KEY_PREFIX}{id}.{secret}"),
        id,
        tenant: tenant.to_string(),
        scopes,
        expires_at,
    })
}

pub(crate) async fn revoke(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<KeyRevoked> {
    who.require(Op::Admin, None)?;
    log.operation = Some(Operation::KeyRevoke);
    let tenant_filter = who.tenant.as_ref().map(std::string::ToString::to_string);
    let target = app
        .registry()
        .active_key(id, tenant_filter.as_deref())
        .await?;
    let Some(target) = target else {
        return Err(ApiError::not_found("no such active key"));
    };
    // Revoking is power over a key, as creating is: only over keys within the caller's own
    // scopes, so an admin of one namespace cannot switch off the tenant's wider keys.
    who.require_within(
        app,
        &Grant::of(&target.scopes, target.expires_at.map(|ms| ms / 1000)),
    )?;
    if !app
        .registry()
        .revoke_key(id, tenant_filter.as_deref())
        .await?
    {
        return Err(ApiError::not_found("no such active key"));
    }
    Ok(KeyRevoked {
        id: id.to_owned(),
        revoked: true,
    })
}

/// `GET /v1/keys?cursor=&limit=`: the keys the caller may see, ordered by id. The bootstrap
/// admin sees every tenant's, a tenant admin its tenant's, and an admin limited to some
/// namespaces only the keys whose namespaces all lie among its own: a key that reaches beyond
/// them (a `*` key, or one of another namespace) is none of its business, as it may not
/// revoke it either. Revoked and expired keys are listed, marked. Never a secret or its hash.
pub(crate) async fn list(
    app: &App,
    who: &Principal,
    query: &[(String, String)],
) -> ApiResult<KeyList> {
    who.require(Op::Admin, None)?;
    let query = Params(query);
    let limit = query.page_limit()?;
    let cursor = query.get("cursor").unwrap_or_default();
    let reach = Reach::of(who)?;
    let keys = app.registry().list_keys(&reach, cursor, limit).await?;
    let next = (keys.len() as u64 == limit)
        .then(|| keys.last().map(|k| k.id.clone()))
        .flatten();
    Ok(KeyList { keys, cursor: next })
}

pub(crate) fn mint(
    app: &App,
    who: &Principal,
    body: MintToken,
    log: &mut LogEntry,
) -> ApiResult<TokenMinted> {
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
    Ok(TokenMinted {
        token: format!("{TOKEN_PREFIX}{}", app.signer.sign(&claims)),
        expires_at: exp,
        namespace: claims.ns.to_string(),
        path_prefix: claims.prefix,
        max_size: max,
        types,
    })
}

impl Reach {
    pub(crate) fn of(who: &Principal) -> ApiResult<Self> {
        if who.is_bootstrap() {
            return Ok(Reach::Everything);
        }
        let tenant = who.tenant()?.to_string();
        if who.scopes.namespaces.iter().any(|n| n == "*") {
            return Ok(Reach::Tenant(tenant));
        }
        let namespaces = serde_json::Value::from(who.scopes.namespaces.clone()).to_string();
        Ok(Reach::Namespaces(tenant, namespaces))
    }
}

/// `GET /v1/stats`: counts and integrity checks (orphans must be 0). A tenant admin sees its
/// tenant, one limited to some namespaces only those (tenant-wide counts are `null` for it);
/// the bootstrap admin sees everything.
pub(crate) async fn stats(app: &App, who: &Principal) -> ApiResult<Stats> {
    who.require(Op::Admin, None)?;
    let reach = Reach::of(who)?;
    let mut stats = app.registry().stats(&reach).await?;
    // Stored objects are keyed by tenant, not namespace: counted only for a tenant-wide reach.
    if reach.tenant_wide() {
        stats.objects = Some(count_objects(app, reach.tenant()).await?);
    }
    if who.is_bootstrap() {
        stats.storage = Some(crate::reconcile::storage_checks(app).await?);
    }
    Ok(stats)
}

/// The objects in the deployment's bucket under the tenant's key prefix (all of them for
/// `None`).
async fn count_objects(app: &App, tenant: Option<&str>) -> ApiResult<u64> {
    let mut objects = 0u64;
    let mut cursor: Option<String> = None;
    // Blobs only: registry backups live beside them under `backups/`.
    let prefix = tenant.map_or_else(|| "t/".to_owned(), |t| format!("t/{t}/"));
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
    Ok(objects)
}
