//! The locker Worker: the authority that decides where bytes go, signs URLs, verifies what was
//! stored and records every access.

mod app;
mod auth;
mod backups;
mod buckets;
mod config;
mod demo;
mod error;
mod files;
mod gateway;
mod health;
mod keys;
mod log;
mod moves;
mod params;
#[cfg(test)]
mod query_plans;
mod reconcile;
mod registry;
mod routes;
mod store;
mod uploads;

use locker_core::api::Operation;
use locker_core::{LockerRef, LogicalPath, Namespace};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{
    event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::routes::{Credential, Endpoint, Route};

pub use config::bindings;

const OPENAPI: &str = include_str!("../openapi.json");

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = req.headers().get("origin")?;
    let allowed = config::allowed_origin(&env, origin.as_deref());
    let mut response = if req.method() == Method::Options {
        preflight()?
    } else {
        match route(&mut req, env).await {
            Ok(r) => r,
            Err(e) => e.to_response()?,
        }
    };
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.set("access-control-allow-origin", &origin)?;
        h.set("vary", "Origin")?;
        h.set(
            "access-control-expose-headers",
            "etag, content-range, content-length, content-disposition",
        )?;
    }
    Ok(response)
}

/// The cron triggers (wrangler.toml `[triggers]`): every run ends reservations nobody
/// completed, checks uploads in parts too large to hash within their `complete`, reconciles
/// storage with the registry, moves a bounded number of blobs of running moves and continues
/// an unfinished backup; the backup trigger
/// (`LOCKER_BACKUP_CRON`) starts a backup.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let app = match App::scheduled(env) {
        Ok(app) => app,
        Err(e) => {
            worker::console_error!("scheduled run failed: {}", e.message);
            return;
        }
    };
    match uploads::sweep_expired(&app).await {
        Ok(n) => worker::console_log!("sweep: {n} reservation(s) expired"),
        Err(e) => worker::console_error!("sweep failed: {}", e.message),
    }
    match uploads::verify_deferred(&app).await {
        Ok(n) => worker::console_log!("verify: {n} upload(s) checked"),
        Err(e) => worker::console_error!("verify failed: {}", e.message),
    }
    reconcile::run(&app).await;
    if let Err(e) = moves::scheduled(&app).await {
        worker::console_error!("moves failed: {}", e.message);
    }
    if let Err(e) = backups::scheduled(&app, &event.cron()).await {
        worker::console_error!("backup failed: {}", e.message);
    }
}

fn preflight() -> Result<Response> {
    let mut r = Response::empty()?.with_status(204);
    let h = r.headers_mut();
    h.set(
        "access-control-allow-methods",
        "GET, PUT, POST, DELETE, OPTIONS",
    )?;
    h.set(
        "access-control-allow-headers",
        "authorization, content-type, range, x-locker-sha256",
    )?;
    h.set("access-control-max-age", "600")?;
    Ok(r)
}

/// An answer of the API: one of the `locker_core::api` types.
fn json_response(status: u16, body: &impl Serialize) -> ApiResult<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let text = req.text().await?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::new(ErrorKind::InvalidJson, format!("request body: {e}")))
}

/// A route's `{namespace}/{path}` from percent-encoded URL segments; validated after decoding,
/// so `%2e%2e`, `%5c` and encoded control characters are refused like their literal forms.
fn file_ref(route: &Route<'_>) -> ApiResult<LockerRef> {
    let decode = |seg: &&str| -> ApiResult<String> {
        percent_decode_str(seg)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| ApiError::new(ErrorKind::InvalidRef, "path is not valid UTF-8"))
    };
    let ns = route.param();
    let path = route
        .rest
        .iter()
        .map(decode)
        .collect::<ApiResult<Vec<_>>>()?
        .join("/");
    Ok(LockerRef::new(
        Namespace::parse(&decode(&ns)?)?,
        LogicalPath::parse(&path)?,
    ))
}

/// The path as the runtime received it, split into raw segments. Parsing it with a WHATWG URL
/// parser would resolve `%2e%2e` as `..`, turning `/a/%2e%2e/b` into `/b`; a request naming a
/// dot segment must be refused instead.
fn raw_segments(req: &Request) -> Vec<String> {
    let url = req.inner().url();
    let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_start_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

async fn route(req: &mut Request, env: Env) -> ApiResult<Response> {
    let url = req.url()?;
    let segments = raw_segments(req);
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Like an unknown route, a method the route does not take is no operation: no access-log row.
    let route = Route::parse(&req.inner().method(), &segs)?;

    // Routes that are not operations: no credentials, no access-log row.
    match route.endpoint() {
        Endpoint::Health => return Ok(health::handle(req, &env).await?),
        Endpoint::OpenApi => {
            let mut r = Response::ok(OPENAPI)?;
            r.headers_mut().set("content-type", "application/json")?;
            return Ok(r);
        }
        Endpoint::DemoEcho => return json_response(200, &demo::echo(req, &env).await?),
        _ => {}
    }

    let app = App::new(req, env)?;
    let mut log = LogEntry::default();
    let outcome = operation(&app, req, &route, &query, &mut log).await;
    if let Err(e) = &outcome {
        if log.operation.is_none() {
            log.operation = Some(Operation::Request);
        }
        log.write(&app, Some(e)).await?;
    } else {
        log.write(&app, None).await?;
    }
    if config::var(&app.env, registry::METER_VAR, "off") != "on" {
        return outcome;
    }
    // The benchmark's meter (off unless the var is set): the whole request's D1 work, the
    // access-log row included, on success and refusal alike.
    let mut response = match outcome {
        Ok(r) => r,
        Err(e) => e.to_response()?,
    };
    response
        .headers_mut()
        .set("x-locker-d1", &app.d1_work().header())?;
    Ok(response)
}

fn sig(query: &[(String, String)]) -> ApiResult<&str> {
    query
        .iter()
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::forbidden("missing signature"))
}

/// Identifies the caller as the route's row says, then runs its handler. The log row names
/// the route's operation once the caller is known: a refused credential is logged as a
/// `request`.
async fn operation(
    app: &App,
    req: &mut Request,
    route: &Route<'_>,
    query: &[(String, String)],
    log: &mut LogEntry,
) -> ApiResult<Response> {
    let who = match route.row.credential {
        Credential::Key => Some(auth::authenticate(app, req, log).await?),
        Credential::None | Credential::Signature | Credential::Builtin => None,
    };
    log.operation = route.row.operation;
    let id = route.param();
    let Some(who) = who else {
        return match route.endpoint() {
            Endpoint::DataPut => {
                let answer = uploads::data_put(app, req, id, sig(query)?, log).await?;
                json_response(answer.http_status(), &answer)
            }
            Endpoint::PartPut => {
                let number = route.params.get(1).copied().unwrap_or_default();
                let answer = uploads::part_put(app, req, id, number, sig(query)?, log).await?;
                json_response(answer.http_status(), &answer)
            }
            Endpoint::Download => files::download(app, req, sig(query)?, log).await,
            Endpoint::DemoToken => json_response(201, &demo::token(app, log)?),
            Endpoint::DownloadBackup => backups::download(app, id, sig(query)?, query, log).await,
            _ => Err(ApiError::unauthorized("missing API key or upload token")),
        };
    };
    let who = &who;
    match route.endpoint() {
        Endpoint::ReserveBatch => json_response(
            200,
            &uploads::reserve_batch(app, who, body(req).await?, log).await?,
        ),
        Endpoint::CompleteBatch => json_response(
            200,
            &uploads::complete_batch(app, who, body(req).await?, log).await?,
        ),
        Endpoint::Reserve => {
            let answer = uploads::reserve(app, who, body(req).await?, log).await?;
            json_response(answer.http_status(), &answer)
        }
        Endpoint::Complete => {
            let answer = uploads::complete(app, who, id, log).await?;
            json_response(answer.http_status(), &answer)
        }
        Endpoint::PartUrls => {
            let request = body(req).await?;
            json_response(200, &uploads::parts(app, who, id, request, log).await?)
        }
        Endpoint::UploadInfo => json_response(200, &uploads::info(app, who, id, log).await?),
        Endpoint::Abort => json_response(200, &uploads::abort(app, who, id, log).await?),
        Endpoint::ListFiles => json_response(200, &files::list(app, who, query).await?),
        Endpoint::StatFile => {
            let file = file_ref(route)?;
            json_response(200, &files::get(app, who, &file, log).await?)
        }
        Endpoint::DeleteFile | Endpoint::GatewayDelete => {
            let file = file_ref(route)?;
            json_response(200, &files::delete(app, who, &file, log).await?)
        }
        Endpoint::CreateKey => {
            json_response(201, &keys::create(app, who, body(req).await?, log).await?)
        }
        Endpoint::ListKeys => json_response(200, &keys::list(app, who, query).await?),
        Endpoint::RevokeKey => json_response(200, &keys::revoke(app, who, id, log).await?),
        Endpoint::MintToken => json_response(201, &keys::mint(app, who, body(req).await?, log)?),
        Endpoint::Logs => json_response(200, &log::list(app, who, query).await?),
        Endpoint::Stats => json_response(200, &keys::stats(app, who).await?),
        Endpoint::RegisterBucket => {
            let request = body(req).await?;
            json_response(201, &buckets::register(app, who, request, log).await?)
        }
        Endpoint::ListBuckets => json_response(200, &buckets::list(app, who).await?),
        Endpoint::ActivateBucket | Endpoint::DeactivateBucket => {
            let active = route.endpoint() == Endpoint::ActivateBucket;
            json_response(200, &buckets::set_active(app, who, id, active, log).await?)
        }
        Endpoint::ListRoutes => json_response(200, &buckets::list_routes(app, who).await?),
        Endpoint::SetRoute => {
            let request = body(req).await?;
            json_response(200, &buckets::set_route(app, who, id, request, log).await?)
        }
        Endpoint::GatewayPut => {
            let file = file_ref(route)?;
            let answer = gateway::put(app, who, req, &file, log).await?;
            json_response(answer.http_status(), &answer)
        }
        Endpoint::GatewayGet => {
            let file = file_ref(route)?;
            gateway::get(app, who, req, &file, log).await
        }
        Endpoint::SignUrl => {
            let request = body(req).await?;
            json_response(200, &gateway::signed_url(app, who, request, log).await?)
        }
        Endpoint::ListBackups => json_response(200, &backups::list(app, who).await?),
        Endpoint::RunBackup => {
            let (status, answer) = backups::start(app, who, log).await?;
            json_response(status, &answer)
        }
        Endpoint::GetBackup => json_response(200, &backups::get(app, who, id, log).await?),
        Endpoint::StartMove => {
            let request = body(req).await?;
            json_response(201, &moves::start(app, who, request, log).await?)
        }
        Endpoint::GetMove => json_response(200, &moves::get(app, who, id, log).await?),
        // Rows with another credential, answered above.
        Endpoint::DownloadBackup
        | Endpoint::Health
        | Endpoint::OpenApi
        | Endpoint::DemoEcho
        | Endpoint::DemoToken
        | Endpoint::DataPut
        | Endpoint::PartPut
        | Endpoint::Download => Err(ApiError::new(
            ErrorKind::Internal,
            "route without a handler",
        )),
    }
}
