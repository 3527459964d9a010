//! The locker Worker: the authority that decides where bytes go, signs URLs, verifies what was
//! stored and records every access.

mod health;

use worker::{event, Context, Env, Request, Response, Result, Router};

/// Binding names, as declared in `wrangler.toml`.
pub mod bindings {
    /// The registry database (D1).
    pub const DB: &str = "DB";
    /// The default blob bucket (R2).
    pub const BLOBS: &str = "BLOBS";
    /// Optional var: the server name written to logs and health answers (else the colo).
    pub const SERVER_NAME: &str = "LOCKER_SERVER";
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get_async("/healthz", |req, ctx| async move {
            health::handle(&req, &ctx.env).await
        })
        .run(req, env)
        .await
}

/// Which server is answering: the configured name, else the Cloudflare colo, else `unknown`.
pub(crate) fn server_name(req: &Request, env: &Env) -> String {
    if let Ok(name) = env.var(bindings::SERVER_NAME) {
        let name = name.to_string();
        if !name.is_empty() {
            return name;
        }
    }
    req.cf()
        .map(|cf| cf.colo())
        .filter(|colo| !colo.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
