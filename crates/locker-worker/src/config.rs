//! What the deployment configures: binding, var and secret names, the vars' values with their
//! defaults, the default bucket and the server name. Read from the `Env` only here, so that
//! `app` (and anything else) needs no handler module to learn its configuration.

use locker_core::{BucketId, BucketIdentity};
use worker::{Env, Request};

/// Binding, var and secret names, as declared in `wrangler.toml`.
pub mod bindings {
    /// The registry database (D1).
    pub const DB: &str = "DB";
    /// The default blob bucket (R2).
    pub const BLOBS: &str = "BLOBS";
    /// Var: the server name written to logs and health answers (else the colo).
    pub const SERVER_NAME: &str = "LOCKER_SERVER";
    /// Var: comma-separated origins allowed to call the API from a browser (`*` for any).
    pub const CORS_ORIGINS: &str = "LOCKER_CORS_ORIGINS";
    /// Var: comma-separated default allow-list of content types (`*/*` for any).
    pub const ALLOWED_TYPES: &str = "LOCKER_ALLOWED_TYPES";
    /// Vars naming the default bucket, from which its id is derived.
    pub const ACCOUNT_ID: &str = "LOCKER_ACCOUNT_ID";
    pub const BUCKET_NAME: &str = "LOCKER_BUCKET_NAME";
    pub const JURISDICTION: &str = "LOCKER_JURISDICTION";
    /// Secret: the HMAC key for signed URLs and upload tokens (at least 32 bytes).
    pub const SIGNING_KEY: &str = "LOCKER_SIGNING_KEY";
    /// Var: seconds a reservation may still be completed after its URL expired, before the
    /// scheduled sweep expires it and deletes its unclaimed bytes (default 3600).
    pub const COMPLETE_GRACE_S: &str = "LOCKER_COMPLETE_GRACE_S";
    /// Secret: the bootstrap admin key (at least 32 bytes), which can create tenant keys.
    pub const ADMIN_KEY: &str = "LOCKER_ADMIN_KEY";
    /// Var: `on` enables the demo routes.
    pub const DEMO: &str = "LOCKER_DEMO";
    /// Var: files of this many bytes and more are uploaded in parts unless the reserve
    /// request says otherwise (default 64 MiB).
    pub const MULTIPART_THRESHOLD: &str = "LOCKER_MULTIPART_THRESHOLD";
}

/// A var from wrangler.toml, or `default` when unset or empty.
pub(crate) fn var(env: &Env, name: &str, default: &str) -> String {
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The bucket behind the `BLOBS` binding, as the vars name it. Its id is derived from that
/// identity, so the same bucket has the same id in every deployment that names it alike.
#[derive(Clone, Debug)]
pub(crate) struct DefaultBucket {
    pub id: BucketId,
    pub account_id: String,
    /// `None` for the default jurisdiction.
    pub jurisdiction: Option<String>,
    pub name: String,
}

impl DefaultBucket {
    pub(crate) fn from_env(env: &Env) -> Self {
        let jurisdiction = var(env, bindings::JURISDICTION, "default");
        let jurisdiction = (jurisdiction != "default").then_some(jurisdiction);
        let account_id = var(env, bindings::ACCOUNT_ID, "local");
        let name = var(env, bindings::BUCKET_NAME, "locker-blobs");
        let id = BucketId::derive(&BucketIdentity {
            account_id: &account_id,
            jurisdiction: jurisdiction.as_deref(),
            name: &name,
        });
        Self {
            id,
            account_id,
            jurisdiction,
            name,
        }
    }
}

/// Which server is answering: the configured name, else the Cloudflare colo, else `unknown`.
pub(crate) fn server_name(req: Option<&Request>, env: &Env) -> String {
    let name = var(env, bindings::SERVER_NAME, "");
    if !name.is_empty() {
        return name;
    }
    req.and_then(Request::cf)
        .map(worker::Cf::colo)
        .filter(|colo| !colo.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The request's origin, if the configured allow-list admits it.
pub(crate) fn allowed_origin(env: &Env, origin: Option<&str>) -> Option<String> {
    let origin = origin?;
    let list = env.var(bindings::CORS_ORIGINS).ok()?.to_string();
    list.split(',')
        .map(str::trim)
        .any(|o| o == "*" || o == origin)
        .then(|| origin.to_owned())
}

/// Seconds a reservation may still be completed after its URL expired.
pub(crate) fn complete_grace_s(env: &Env) -> u64 {
    var(env, bindings::COMPLETE_GRACE_S, "3600")
        .parse::<u64>()
        .unwrap_or(3600)
}

/// Bytes from which a file is uploaded in parts when the client does not say.
pub(crate) fn multipart_threshold(env: &Env) -> u64 {
    let default = locker_core::multipart::DEFAULT_THRESHOLD;
    var(env, bindings::MULTIPART_THRESHOLD, "")
        .parse::<u64>()
        .unwrap_or(default)
}
