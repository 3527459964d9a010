//! `GET /healthz`: proves every layer answers, with a real round-trip to D1 and to R2.

use locker_core::{Check, Health};
use worker::{Date, Env, Request, Response, Result};

use crate::config::{bindings, DefaultBucket};
use crate::registry::{Buckets, D1Registry};

pub(crate) async fn handle(req: &Request, env: &Env) -> Result<Response> {
    let health = Health::new(
        env!("CARGO_PKG_VERSION"),
        &crate::config::server_name(Some(req), env),
        d1_check(env).await,
        r2_check(env).await,
    );
    let status = health.status.http_status();
    let mut response = Response::from_json(&health)?.with_status(status);
    // A cached health answer would hide an outage.
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

/// Counts the registered buckets: a real query that also proves the migrations ran.
async fn d1_check(env: &Env) -> Check {
    let started = Date::now().as_millis();
    let outcome = match env.d1(bindings::DB) {
        Ok(db) => {
            let registry = D1Registry::new(db, started, DefaultBucket::from_env(env));
            registry.bucket_count().await.map_err(|e| e.message)
        }
        Err(e) => Err(e.to_string()),
    };
    let ms = Date::now().as_millis().saturating_sub(started);
    match outcome {
        Ok(n) => Check {
            ok: true,
            detail: format!("{n} bucket(s) registered"),
            ms,
        },
        Err(e) => Check {
            ok: false,
            detail: format!("registry query failed: {e}"),
            ms,
        },
    }
}

/// Lists at most one object: proves the binding exists and storage answers.
async fn r2_check(env: &Env) -> Check {
    let started = Date::now().as_millis();
    let outcome = async {
        let bucket = env.bucket(bindings::BLOBS)?;
        bucket.list().limit(1).execute().await
    }
    .await;
    let ms = Date::now().as_millis().saturating_sub(started);
    match outcome {
        Ok(_) => Check {
            ok: true,
            detail: format!("binding {} answered", bindings::BLOBS),
            ms,
        },
        Err(e) => Check {
            ok: false,
            detail: format!("storage listing failed: {e}"),
            ms,
        },
    }
}
