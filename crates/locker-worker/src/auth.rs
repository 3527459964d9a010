//! Who is calling: API keys (Bearer `lk_{id}.{secret}`), the bootstrap admin key (a Worker
//! secret), and short-lived browser upload tokens (Bearer `lkt_{signed claims}`).
//!
//! Only `hex(sha256(secret))` of an API key is stored. Secrets are compared in constant time.

use locker_core::multipart::MAX_OBJECT_SIZE;
use locker_core::scope::{self, Grant};
use locker_core::sign::{constant_time_eq, UploadTokenClaims};
use locker_core::validate::{self, ContentError};
use locker_core::{LogicalPath, Namespace, Sha256Hex, Tenant};
use worker::Request;

use crate::app::App;
use crate::bindings;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::Keys;

use locker_core::credential::Credential;
pub(crate) use locker_core::credential::{KEY_PREFIX, TOKEN_PREFIX};
pub(crate) const BOOTSTRAP_KEY_ID: &str = "bootstrap";

pub(crate) use locker_core::scope::{Op, Scopes};

/// The authenticated caller.
pub(crate) struct Principal {
    pub key_id: String,
    /// `None` only for the bootstrap admin, which manages keys but owns no files.
    pub tenant: Option<Tenant>,
    pub scopes: Scopes,
    /// Set when the caller is a browser with an upload token.
    pub token: Option<UploadTokenClaims>,
    /// Unix seconds after which the credential stops working (`None`: never).
    pub expires_at: Option<u64>,
}

fn bearer(req: &Request) -> ApiResult<Option<String>> {
    let Some(value) = req.headers().get("authorization")? else {
        return Ok(None);
    };
    match value.strip_prefix("Bearer ") {
        Some(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
        _ => Err(ApiError::unauthorized(
            "Authorization must be 'Bearer <key or token>'",
        )),
    }
}

/// Authenticates the request. Records the key id in `log` as soon as it is known.
pub(crate) async fn authenticate(
    app: &App,
    req: &Request,
    log: &mut LogEntry,
) -> ApiResult<Principal> {
    let Some(credential) = bearer(req)? else {
        return Err(ApiError::unauthorized("missing API key or upload token"));
    };
    let parsed =
        Credential::parse(&credential).map_err(|e| ApiError::unauthorized(e.to_string()))?;
    if let Credential::UploadToken(token) = parsed {
        let claims: UploadTokenClaims = app.signer.verify(token, app.now_s())?;
        log.key_id = Some(claims.kid.clone());
        log.tenant = Some(claims.t.to_string());
        // A token dies with the key that minted it.
        if claims.kid != BOOTSTRAP_KEY_ID {
            let row = app.registry().key(&claims.kid).await?;
            let alive = row.is_some_and(|r| {
                !r.revoked && !r.expired(app.now_ms) && r.tenant == claims.t.as_str()
            });
            if !alive {
                return Err(ApiError::unauthorized(
                    "the key that minted this token was revoked or expired",
                ));
            }
        }
        return Ok(Principal {
            key_id: claims.kid.clone(),
            tenant: Some(claims.t.clone()),
            scopes: Scopes {
                namespaces: vec![claims.ns.to_string()],
                ops: vec![Op::Write],
                max_size: Some(claims.max),
                types: (!claims.types.is_empty()).then(|| claims.types.clone()),
            },
            expires_at: Some(claims.exp),
            token: Some(claims),
        });
    }
    if let Credential::ApiKey { id, secret } = parsed {
        let row = app.registry().key(id).await?;
        let hash = Sha256Hex::digest(secret.as_bytes()).to_string();
        let Some(row) = row.filter(|r| constant_time_eq(r.secret_hash.as_bytes(), hash.as_bytes()))
        else {
            return Err(ApiError::unauthorized("unknown API key"));
        };
        log.key_id = Some(id.to_owned());
        log.tenant = Some(row.tenant.clone());
        if row.revoked {
            return Err(ApiError::unauthorized("this API key was revoked"));
        }
        if row.expired(app.now_ms) {
            return Err(ApiError::new(
                ErrorKind::KeyExpired,
                "this API key has expired",
            ));
        }
        return Ok(Principal {
            key_id: id.to_owned(),
            tenant: Some(Tenant::parse(&row.tenant)?),
            scopes: row.scopes,
            token: None,
            expires_at: row.expires_at.map(|ms| ms / 1000),
        });
    }
    let bootstrap = app.env.secret(bindings::ADMIN_KEY).map(|s| s.to_string());
    if let Ok(admin) = bootstrap {
        if admin.len() >= 32 && constant_time_eq(admin.as_bytes(), credential.as_bytes()) {
            log.key_id = Some(BOOTSTRAP_KEY_ID.to_owned());
            return Ok(Principal {
                key_id: BOOTSTRAP_KEY_ID.to_owned(),
                tenant: None,
                scopes: Scopes {
                    namespaces: vec!["*".into()],
                    ops: vec![Op::Admin],
                    max_size: None,
                    types: None,
                },
                token: None,
                expires_at: None,
            });
        }
    }
    Err(ApiError::unauthorized("unknown API key"))
}

/// The deployment's default allow-list of content types (`LOCKER_ALLOWED_TYPES`), for
/// credentials without types of their own.
pub(crate) fn default_types(app: &App) -> Vec<String> {
    app.var(bindings::ALLOWED_TYPES, "*/*")
        .split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

impl Principal {
    pub(crate) fn is_bootstrap(&self) -> bool {
        self.key_id == BOOTSTRAP_KEY_ID && self.tenant.is_none()
    }

    /// The caller's tenant; the bootstrap admin has none and cannot touch files.
    pub(crate) fn tenant(&self) -> ApiResult<&Tenant> {
        self.tenant.as_ref().ok_or_else(|| {
            ApiError::forbidden("the bootstrap key only manages keys; use a tenant key for files")
        })
    }

    /// Requires `op`, and access to `namespace` when given.
    pub(crate) fn require(&self, op: Op, namespace: Option<&Namespace>) -> ApiResult<()> {
        if !self.scopes.ops.contains(&op) {
            return Err(ApiError::forbidden(format!(
                "this key may not {}",
                match op {
                    Op::Admin => "administer",
                    other => other.as_str(),
                }
            )));
        }
        if let Some(ns) = namespace {
            let allowed = self
                .scopes
                .namespaces
                .iter()
                .any(|n| n == "*" || n == ns.as_str());
            if !allowed {
                return Err(ApiError::forbidden(format!(
                    "this key may not use namespace '{ns}'"
                )));
            }
        }
        Ok(())
    }

    /// Requires write access to `path` in `namespace` (an upload token also binds a prefix).
    pub(crate) fn require_write_path(
        &self,
        namespace: &Namespace,
        path: &LogicalPath,
    ) -> ApiResult<()> {
        self.require(Op::Write, Some(namespace))?;
        if let Some(token) = &self.token {
            if !path.as_str().starts_with(&token.prefix) {
                return Err(ApiError::forbidden(format!(
                    "this token may only write paths starting with '{}'",
                    token.prefix
                )));
            }
        }
        Ok(())
    }

    /// This credential in every dimension of the subset rule.
    pub(crate) fn grant(&self) -> Grant<'_> {
        Grant::of(&self.scopes, self.expires_at)
    }

    /// Requires that `child` is within this caller's own grant: a credential never creates
    /// one broader than itself. The bootstrap admin is unlimited.
    pub(crate) fn require_within(&self, app: &App, child: &Grant<'_>) -> ApiResult<()> {
        if self.is_bootstrap() {
            return Ok(());
        }
        scope::within(child, &self.grant(), &default_types(app))
            .map_err(|e| ApiError::forbidden(e.to_string()).with_kind(ErrorKind::ScopeExceeded))
    }

    /// Largest upload and allowed types for this caller. The size is the caller's own limit;
    /// what one request can carry depends on the transport and is checked where it is known.
    pub(crate) fn limits(&self, app: &App) -> (u64, Vec<String>) {
        let max = self
            .scopes
            .max_size
            .unwrap_or(MAX_OBJECT_SIZE)
            .min(MAX_OBJECT_SIZE);
        let types = self
            .scopes
            .types
            .clone()
            .unwrap_or_else(|| default_types(app));
        (max, types)
    }

    /// Checks a declared size and type against this caller's limits.
    pub(crate) fn check_content(&self, app: &App, size: u64, content_type: &str) -> ApiResult<()> {
        validate::content_type(content_type)?;
        let (max, types) = self.limits(app);
        validate::size_within(size, max)?;
        if !validate::type_allowed(content_type, &types) {
            return Err(ContentError::TypeNotAllowed(content_type.to_owned()).into());
        }
        Ok(())
    }
}
