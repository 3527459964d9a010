//! Two routes for the demo page, answered only when the var `LOCKER_DEMO` is `on` (`cargo xtask
//! dev` and `test` set it; `wrangler.toml` does not, so a deployment has them off):
//!
//! - `POST /demo/token` plays the part of a site's backend: it mints a short-lived upload token
//!   for the `demo` tenant's `demo` namespace, as a real site would with its API key after
//!   checking its own session. It is open to anyone who can reach it, hence off by default.
//! - `POST /demo/echo` answers the fields of a submitted form as JSON, so the demo can show
//!   what a form around the widget sends.

use worker::{Env, Request, Url};

use crate::app::App;
use crate::auth::{Op, Principal, Scopes, BOOTSTRAP_KEY_ID};
use crate::config;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::keys;
use crate::log::LogEntry;
use locker_core::api::{DemoEcho, MintToken, TokenMinted};

pub(crate) const TENANT: &str = "demo";
pub(crate) const NAMESPACE: &str = "demo";

pub(crate) fn enabled(env: &Env) -> bool {
    config::var(env, config::bindings::DEMO, "off") == "on"
}

fn disabled() -> ApiError {
    ApiError::not_found("the demo routes are off (LOCKER_DEMO is not 'on')")
        .with_kind(ErrorKind::RouteNotFound)
}

/// `POST /demo/token`: an upload token for `demo/uploads/...`, valid 10 minutes.
pub(crate) fn token(app: &App, log: &mut LogEntry) -> ApiResult<TokenMinted> {
    if !enabled(&app.env) {
        return Err(disabled());
    }
    let who = Principal {
        key_id: BOOTSTRAP_KEY_ID.to_owned(),
        tenant: Some(locker_core::Tenant::parse(TENANT)?),
        scopes: Scopes {
            namespaces: vec![NAMESPACE.to_owned()],
            ops: vec![Op::Write],
            max_size: None,
            types: None,
        },
        token: None,
        expires_at: None,
    };
    log.key_id = Some(BOOTSTRAP_KEY_ID.to_owned());
    log.tenant = Some(TENANT.to_owned());
    keys::mint(
        app,
        &who,
        MintToken {
            namespace: NAMESPACE.to_owned(),
            path_prefix: "uploads/".to_owned(),
            max_size: None,
            types: Vec::new(),
            ttl: Some(600),
        },
        log,
    )
}

/// `POST /demo/echo`: the submitted `application/x-www-form-urlencoded` fields, in order.
pub(crate) async fn echo(req: &mut Request, env: &Env) -> ApiResult<DemoEcho> {
    if !enabled(env) {
        return Err(disabled());
    }
    let body = req.text().await?;
    if body.len() > 64 * 1024 {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            "the echo takes at most 64 KiB",
        ));
    }
    let url = Url::parse(&format!("http://echo.invalid/?{body}"))
        .map_err(|_| ApiError::new(ErrorKind::InvalidForm, "not a urlencoded form"))?;
    let fields: Vec<[String; 2]> = url
        .query_pairs()
        .map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect();
    Ok(DemoEcho { fields })
}
