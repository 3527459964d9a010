//! The locker Worker: the authority that decides where bytes go, signs URLs, verifies what was
//! stored and records every access.

mod app;
mod auth;
mod buckets;
mod demo;
mod error;
mod files;
mod gateway;
mod health;
mod keys;
mod log;
#[cfg(test)]
mod query_plans;
mod store;
mod uploads;

use locker_core::{LockerRef, LogicalPath, Namespace};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use worker::{
    event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::log::LogEntry;

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
}

const OPENAPI: &str = include_str!("../openapi.json");

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = req.headers().get("origin")?;
    let allowed = allowed_origin(&env, origin.as_deref());
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

/// The cron trigger (wrangler.toml `[triggers]`): ends reservations nobody completed.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let swept = match App::scheduled(env) {
        Ok(app) => uploads::sweep_expired(&app).await,
        Err(e) => Err(e),
    };
    match swept {
        Ok(n) => worker::console_log!("sweep: {n} reservation(s) expired"),
        Err(e) => worker::console_error!("sweep failed: {}", e.message),
    }
}

/// The request's origin, if the configured allow-list admits it.
fn allowed_origin(env: &Env, origin: Option<&str>) -> Option<String> {
    let origin = origin?;
    let list = env.var(bindings::CORS_ORIGINS).ok()?.to_string();
    list.split(',')
        .map(str::trim)
        .any(|o| o == "*" || o == origin)
        .then(|| origin.to_owned())
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

/// Which server is answering: the configured name, else the Cloudflare colo, else `unknown`.
pub(crate) fn server_name(req: Option<&Request>, env: &Env) -> String {
    if let Ok(name) = env.var(bindings::SERVER_NAME) {
        let name = name.to_string();
        if !name.is_empty() {
            return name;
        }
    }
    req.and_then(Request::cf)
        .map(|cf| cf.colo())
        .filter(|colo| !colo.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn json_response(status: u16, body: &serde_json::Value) -> ApiResult<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let text = req.text().await?;
    serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))
}

/// `{namespace}/{path...}` from percent-encoded URL segments; validated after decoding, so
/// `%2e%2e`, `%5c` and encoded control characters are refused like their literal forms.
fn file_ref(segments: &[&str]) -> ApiResult<LockerRef> {
    let decode = |seg: &&str| -> ApiResult<String> {
        percent_decode_str(seg)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::bad_request("invalid_ref", "path is not valid UTF-8"))
    };
    let (ns, rest) = segments
        .split_first()
        .ok_or_else(|| ApiError::bad_request("invalid_ref", "missing namespace"))?;
    let path = rest
        .iter()
        .map(decode)
        .collect::<ApiResult<Vec<_>>>()?
        .join("/");
    Ok(LockerRef::new(
        Namespace::parse(&decode(ns)?)?,
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

/// The methods each route takes, by path shape, as an `Allow` header value; `None` for no route.
/// Matched on the method as sent: the runtime's method type reads a method it does not know
/// (`QUERY`, `PROPFIND`) as `GET`, which answered them like a `GET`.
fn allowed_methods(segs: &[&str]) -> Option<&'static str> {
    Some(match segs {
        ["healthz"] | ["openapi.json"] => "GET",
        ["demo", "echo" | "token"] => "POST",
        ["v1", "uploads"] => "POST",
        ["v1", "uploads", _] => "DELETE",
        ["v1", "uploads", _, "complete"] => "POST",
        ["v1", "data", _] => "PUT",
        ["v1", "download"] => "GET",
        ["v1", "files"] => "GET",
        ["v1", "files", _, ..] => "GET, DELETE",
        ["v1", "keys"] => "POST",
        ["v1", "keys", _] => "DELETE",
        ["v1", "tokens"] => "POST",
        ["v1", "logs"] | ["v1", "stats"] => "GET",
        ["v1", "buckets"] => "GET, POST",
        ["v1", "buckets", _, "activate" | "deactivate"] => "POST",
        ["v1", "routes"] => "GET",
        ["v1", "routes", _] => "PUT",
        ["api", "files", _, _, ..] => "GET, PUT, DELETE",
        ["api", "signed-url"] => "POST",
        _ => return None,
    })
}

async fn route(req: &mut Request, env: Env) -> ApiResult<Response> {
    let url = req.url()?;
    let segments = raw_segments(req);
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let method = req.method();

    // Like an unknown route, a method the route does not take is no operation: no access-log row.
    let Some(allow) = allowed_methods(&segs) else {
        return Err(ApiError::not_found("no such route").with_code("route_not_found"));
    };
    let sent = req.inner().method();
    if !allow.split(", ").any(|m| m == sent) {
        let mut r = ApiError::new(
            405,
            "method_not_allowed",
            format!("this route takes {allow}"),
        )
        .to_response()?;
        r.headers_mut().set("allow", allow)?;
        return Ok(r);
    }

    // Routes that are not operations: no credentials, no access-log row.
    match (&method, segs.as_slice()) {
        (Method::Get, ["healthz"]) => return Ok(health::handle(req, &env).await?),
        (Method::Get, ["openapi.json"]) => {
            let mut r = Response::ok(OPENAPI)?;
            r.headers_mut().set("content-type", "application/json")?;
            return Ok(r);
        }
        (Method::Post, ["demo", "echo"]) => {
            return json_response(200, &demo::echo(req, &env).await?);
        }
        _ => {}
    }
    let app = App::new(req, env)?;
    let mut log = LogEntry::default();
    let outcome = operation(&app, req, &method, &segs, &query, &mut log).await;
    if let Err(e) = &outcome {
        if log.operation.is_none() {
            log.operation = Some("request");
        }
        log.write(&app, Some(e)).await?;
    } else {
        log.write(&app, None).await?;
    }
    outcome
}

fn sig(query: &[(String, String)]) -> ApiResult<&str> {
    query
        .iter()
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::forbidden("missing signature"))
}

async fn operation(
    app: &App,
    req: &mut Request,
    method: &Method,
    segs: &[&str],
    query: &[(String, String)],
    log: &mut LogEntry,
) -> ApiResult<Response> {
    // Signed data-plane routes: the signature is the credential.
    match (method, segs) {
        (Method::Put, ["v1", "data", id]) => {
            log.operation = Some("upload");
            let (status, answer) = uploads::data_put(app, req, id, sig(query)?, log).await?;
            return json_response(status, &answer);
        }
        (Method::Get, ["v1", "download"]) => {
            log.operation = Some("download");
            return files::download(app, req, sig(query)?, log).await;
        }
        // The demo's stand-in for a site backend; it holds the credential itself.
        (Method::Post, ["demo", "token"]) => {
            log.operation = Some("token");
            return json_response(201, &demo::token(app, log)?);
        }
        _ => {}
    }

    let who = auth::authenticate(app, req, log).await?;
    match (method, segs) {
        (Method::Post, ["v1", "uploads"]) => {
            log.operation = Some("reserve");
            let request = body(req).await?;
            let (status, answer) = uploads::reserve(app, &who, request, log).await?;
            json_response(status, &answer)
        }
        (Method::Post, ["v1", "uploads", id, "complete"]) => {
            log.operation = Some("complete");
            json_response(200, &uploads::complete(app, &who, id, log).await?)
        }
        (Method::Delete, ["v1", "uploads", id]) => {
            log.operation = Some("abort");
            json_response(200, &uploads::abort(app, &who, id, log).await?)
        }
        (Method::Get, ["v1", "files"]) => {
            log.operation = Some("list");
            json_response(200, &files::list(app, &who, query).await?)
        }
        (Method::Get, ["v1", "files", rest @ ..]) => {
            log.operation = Some("stat");
            let file = file_ref(rest)?;
            json_response(200, &files::get(app, &who, &file, log).await?)
        }
        (Method::Delete, ["v1", "files", rest @ ..]) => {
            log.operation = Some("delete");
            let file = file_ref(rest)?;
            json_response(200, &files::delete(app, &who, &file, log).await?)
        }
        (Method::Post, ["v1", "keys"]) => {
            log.operation = Some("key_create");
            let request = body(req).await?;
            json_response(201, &keys::create(app, &who, request, log).await?)
        }
        (Method::Delete, ["v1", "keys", id]) => {
            log.operation = Some("key_revoke");
            json_response(200, &keys::revoke(app, &who, id, log).await?)
        }
        (Method::Post, ["v1", "tokens"]) => {
            log.operation = Some("token");
            let request = body(req).await?;
            json_response(201, &keys::mint(app, &who, request, log)?)
        }
        (Method::Get, ["v1", "logs"]) => {
            log.operation = Some("logs");
            json_response(200, &log::list(app, &who, query).await?)
        }
        (Method::Get, ["v1", "stats"]) => {
            log.operation = Some("stats");
            json_response(200, &keys::stats(app, &who).await?)
        }
        (Method::Post, ["v1", "buckets"]) => {
            log.operation = Some("bucket_register");
            let request = body(req).await?;
            json_response(201, &buckets::register(app, &who, request, log).await?)
        }
        (Method::Get, ["v1", "buckets"]) => {
            log.operation = Some("buckets");
            json_response(200, &buckets::list(app, &who).await?)
        }
        (Method::Post, ["v1", "buckets", id, action]) => {
            let active = *action == "activate";
            log.operation = Some(if active {
                "bucket_activate"
            } else {
                "bucket_deactivate"
            });
            json_response(200, &buckets::set_active(app, &who, id, active, log).await?)
        }
        (Method::Get, ["v1", "routes"]) => {
            log.operation = Some("routes");
            json_response(200, &buckets::list_routes(app, &who).await?)
        }
        (Method::Put, ["v1", "routes", namespace]) => {
            log.operation = Some("route_set");
            let request = body(req).await?;
            json_response(
                200,
                &buckets::set_route(app, &who, namespace, request, log).await?,
            )
        }
        (Method::Put, ["api", "files", rest @ ..]) => {
            log.operation = Some("upload");
            let file = file_ref(rest)?;
            let answer = gateway::put(app, &who, req, &file, log).await?;
            let status = if answer["deduplicated"] == true {
                200
            } else {
                201
            };
            json_response(status, &answer)
        }
        (Method::Get, ["api", "files", rest @ ..]) => {
            log.operation = Some("download");
            let file = file_ref(rest)?;
            gateway::get(app, &who, req, &file, log).await
        }
        (Method::Delete, ["api", "files", rest @ ..]) => {
            log.operation = Some("delete");
            let file = file_ref(rest)?;
            json_response(200, &files::delete(app, &who, &file, log).await?)
        }
        (Method::Post, ["api", "signed-url"]) => {
            log.operation = Some("sign");
            let request = body(req).await?;
            json_response(200, &gateway::signed_url(app, &who, request, log).await?)
        }
        _ => Err(ApiError::new(
            405,
            "method_not_allowed",
            "this route does not take that method",
        )),
    }
}
