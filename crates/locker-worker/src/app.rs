//! What every handler needs: bindings, the registry, the signer, the clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use locker_core::sign::Signer;
use locker_core::BucketId;
use wasm_bindgen::JsCast;
use worker::{Bucket, Date, Env, Request};

use crate::config::{self, bindings, DefaultBucket};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{D1Registry, D1Work, Registry};

/// Per-request context.
pub(crate) struct App {
    pub env: Env,
    registry: D1Registry,
    pub blobs: Bucket,
    pub signer: Signer,
    /// Request time, Unix milliseconds (one reading per request).
    pub now_ms: u64,
    /// The colo or the configured server name, for the access log.
    pub server: String,
    /// `scheme://host` of this Worker, for the URLs it signs.
    pub origin: String,
    /// Id of the bucket new uploads go to (the `BLOBS` binding).
    pub bucket_id: BucketId,
}

impl App {
    pub(crate) fn new(req: &Request, env: Env) -> ApiResult<Self> {
        let origin = req.url()?.origin().ascii_serialization();
        let server = config::server_name(Some(req), &env);
        Self::with(env, origin, server)
    }

    /// For work no request started (the scheduled sweep): no origin to sign URLs for.
    pub(crate) fn scheduled(env: Env) -> ApiResult<Self> {
        let server = config::server_name(None, &env);
        Self::with(env, String::new(), server)
    }

    fn with(env: Env, origin: String, server: String) -> ApiResult<Self> {
        let secret = env
            .secret(bindings::SIGNING_KEY)
            .map(|s| s.to_string())
            .map_err(|_| misconfigured("the LOCKER_SIGNING_KEY secret is not set"))?;
        let signer = Signer::new(secret.as_bytes())
            .map_err(|e| misconfigured(&format!("LOCKER_SIGNING_KEY: {e}")))?;
        let default_bucket = DefaultBucket::from_env(&env);
        let bucket_id = default_bucket.id.clone();
        let now_ms = Date::now().as_millis();
        Ok(Self {
            registry: D1Registry::new(env.d1(bindings::DB)?, now_ms, default_bucket),
            blobs: env.bucket(bindings::BLOBS)?,
            signer,
            now_ms,
            server,
            origin,
            bucket_id,
            env,
        })
    }

    /// The registry, behind its traits: handlers name no backend.
    pub(crate) fn registry(&self) -> &impl Registry {
        &self.registry
    }

    /// What D1 reported doing for this request so far.
    pub(crate) fn d1_work(&self) -> D1Work {
        self.registry.work()
    }

    pub(crate) fn now_s(&self) -> u64 {
        self.now_ms / 1000
    }

    /// A var from wrangler.toml, or `default` when unset or empty.
    pub(crate) fn var(&self, name: &str, default: &str) -> String {
        config::var(&self.env, name, default)
    }
}

fn misconfigured(message: &str) -> ApiError {
    worker::console_error!("{message}");
    ApiError::new(
        ErrorKind::Misconfigured,
        "the Worker is misconfigured; see its logs",
    )
}

/// `n` random bytes from the runtime's CSPRNG.
pub(crate) fn random_bytes(n: usize) -> ApiResult<Vec<u8>> {
    let crypto: web_sys::Crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "no crypto in this runtime"))?;
    let mut buf = vec![0u8; n];
    crypto
        .get_random_values_with_u8_array(&mut buf)
        .map_err(|_| ApiError::new(ErrorKind::Internal, "random source failed"))?;
    Ok(buf)
}

/// A random id: `prefix` + 16 random bytes in base64url (22 characters).
pub(crate) fn random_id(prefix: &str) -> ApiResult<String> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes(16)?)
    ))
}
