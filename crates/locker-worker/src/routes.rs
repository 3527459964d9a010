//! Every route the Worker answers, in one table.
//!
//! A request's path and method are looked up in [`TABLE`] once: an unknown path is 404
//! `route_not_found`, a known path with another method is 405 with `Allow` listing the methods
//! of that path, both from the same rows. Each row names what the request is ([`Endpoint`], one
//! handler each in `lib.rs`) and the [`Operation`] its access-log row records. The paths are
//! written as in `openapi.json`, and a host test checks the two agree both ways.

use locker_core::api::Operation;
use worker::Method;

/// What a request asks for: one variant per row of [`TABLE`], one handler each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    OpenApi,
    /// The demo's echo of a form post (no credential, no log row).
    DemoEcho,
    /// The demo's stand-in for a site backend minting a token; it holds the credential itself.
    DemoToken,
    Reserve,
    /// `POST /v1/uploads:batch`: up to 100 reservations, each logged as its own.
    ReserveBatch,
    DataPut,
    /// `PUT /v1/data/{id}/parts/{n}`: one part of an upload in parts, through the Worker.
    PartPut,
    /// `POST /v1/uploads/{id}/parts`: the signed URLs of parts.
    PartUrls,
    /// `GET /v1/uploads/{id}`: a reservation and its stored parts.
    UploadInfo,
    Complete,
    /// `POST /v1/uploads:complete`: up to 100 completes, each logged as its own.
    CompleteBatch,
    Abort,
    Download,
    ListFiles,
    StatFile,
    DeleteFile,
    CreateKey,
    ListKeys,
    RevokeKey,
    MintToken,
    Logs,
    Stats,
    RegisterBucket,
    ListBuckets,
    ActivateBucket,
    DeactivateBucket,
    ListRoutes,
    SetRoute,
    GatewayPut,
    GatewayGet,
    GatewayDelete,
    SignUrl,
    ListBackups,
    RunBackup,
    GetBackup,
    /// A backup's manifest or part, through the URL `GetBackup` signed.
    DownloadBackup,
    /// `POST /v1/moves`: move a tenant's files to another bucket.
    StartMove,
    /// `GET /v1/moves/{id}`: a move's progress.
    GetMove,
}

/// How the caller of a route is identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Nobody: health, docs and the demo's echo; no access-log row either.
    None,
    /// The `sig` query parameter of a URL the Worker signed.
    Signature,
    /// The route holds its credential itself (the demo's token minting).
    Builtin,
    /// An API key or upload token in `Authorization`.
    Key,
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Row {
    pub method: Method,
    /// As in `openapi.json`: `{name}` captures one segment; a last `{path}` captures the rest
    /// of the path, one segment or more.
    pub path: &'static str,
    pub endpoint: Endpoint,
    /// What the access log records; `None` for routes that are not operations.
    pub operation: Option<Operation>,
    pub credential: Credential,
}

const fn row(method: Method, path: &'static str, endpoint: Endpoint, operation: Operation) -> Row {
    Row {
        method,
        path,
        endpoint,
        operation: Some(operation),
        credential: Credential::Key,
    }
}

const fn signed(row: Row) -> Row {
    Row {
        credential: Credential::Signature,
        ..row
    }
}

const fn open(method: Method, path: &'static str, endpoint: Endpoint) -> Row {
    Row {
        method,
        path,
        endpoint,
        operation: None,
        credential: Credential::None,
    }
}

use Endpoint as E;
use Method::{Delete, Get, Post, Put};
use Operation as Op;

/// Every route, in the order they are matched (the first row whose path and method match).
pub(crate) static TABLE: &[Row] = &[
    open(Get, "/healthz", E::Health),
    open(Get, "/openapi.json", E::OpenApi),
    open(Post, "/demo/echo", E::DemoEcho),
    Row {
        credential: Credential::Builtin,
        ..row(Post, "/demo/token", E::DemoToken, Op::Token)
    },
    row(Post, "/v1/uploads", E::Reserve, Op::Reserve),
    row(Post, "/v1/uploads:batch", E::ReserveBatch, Op::Reserve),
    row(Post, "/v1/uploads:complete", E::CompleteBatch, Op::Complete),
    row(Post, "/v1/uploads/{id}/complete", E::Complete, Op::Complete),
    row(Post, "/v1/uploads/{id}/parts", E::PartUrls, Op::Sign),
    row(Get, "/v1/uploads/{id}", E::UploadInfo, Op::Stat),
    row(Delete, "/v1/uploads/{id}", E::Abort, Op::Abort),
    signed(row(Put, "/v1/data/{id}", E::DataPut, Op::Upload)),
    signed(row(Put, "/v1/data/{id}/parts/{n}", E::PartPut, Op::Upload)),
    signed(row(Get, "/v1/download", E::Download, Op::Download)),
    row(Get, "/v1/files", E::ListFiles, Op::List),
    row(Get, "/v1/files/{namespace}/{path}", E::StatFile, Op::Stat),
    row(
        Delete,
        "/v1/files/{namespace}/{path}",
        E::DeleteFile,
        Op::Delete,
    ),
    row(Post, "/v1/keys", E::CreateKey, Op::KeyCreate),
    row(Get, "/v1/keys", E::ListKeys, Op::Keys),
    row(Delete, "/v1/keys/{id}", E::RevokeKey, Op::KeyRevoke),
    row(Post, "/v1/tokens", E::MintToken, Op::Token),
    row(Get, "/v1/logs", E::Logs, Op::Logs),
    row(Get, "/v1/stats", E::Stats, Op::Stats),
    row(Post, "/v1/buckets", E::RegisterBucket, Op::BucketRegister),
    row(Get, "/v1/buckets", E::ListBuckets, Op::Buckets),
    row(
        Post,
        "/v1/buckets/{id}/activate",
        E::ActivateBucket,
        Op::BucketActivate,
    ),
    row(
        Post,
        "/v1/buckets/{id}/deactivate",
        E::DeactivateBucket,
        Op::BucketDeactivate,
    ),
    row(Get, "/v1/routes", E::ListRoutes, Op::Routes),
    row(Put, "/v1/routes/{namespace}", E::SetRoute, Op::RouteSet),
    row(
        Put,
        "/api/files/{namespace}/{path}",
        E::GatewayPut,
        Op::Upload,
    ),
    row(
        Get,
        "/api/files/{namespace}/{path}",
        E::GatewayGet,
        Op::Download,
    ),
    row(
        Delete,
        "/api/files/{namespace}/{path}",
        E::GatewayDelete,
        Op::Delete,
    ),
    row(Post, "/api/signed-url", E::SignUrl, Op::Sign),
    row(Get, "/v1/backups", E::ListBackups, Op::Backups),
    row(Post, "/v1/backups", E::RunBackup, Op::Backup),
    row(Get, "/v1/backups/{id}", E::GetBackup, Op::Backups),
    signed(row(
        Get,
        "/v1/backups/{id}/download",
        E::DownloadBackup,
        Op::BackupDownload,
    )),
    row(Post, "/v1/moves", E::StartMove, Op::MoveStart),
    row(Get, "/v1/moves/{id}", E::GetMove, Op::Moves),
];

/// A request matched to its row, with the segments its path captured (still percent-encoded).
#[derive(Debug)]
pub(crate) struct Route<'a> {
    pub row: &'static Row,
    /// The `{name}` segments, in order.
    pub params: Vec<&'a str>,
    /// What a last `{path}` captured; empty for other routes.
    pub rest: &'a [&'a str],
}

/// Why no route matched.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// No row has this path.
    NotFound,
    /// Rows have this path, with these methods only: the `Allow` header, in the order of
    /// [`ALLOW_ORDER`].
    MethodNotAllowed(String),
}

/// The order methods are listed in `Allow`.
const ALLOW_ORDER: [Method; 4] = [Get, Put, Post, Delete];

impl<'a> Route<'a> {
    /// The row for `method` (as sent, upper case) on the raw path `segments`. The method is
    /// compared as text: the runtime's method type reads one it does not know (`QUERY`,
    /// `PROPFIND`) as `GET`, which would answer it like a `GET`.
    pub(crate) fn parse(method: &str, segments: &'a [&'a str]) -> Result<Self, RouteError> {
        let mut allow = Vec::new();
        for row in TABLE {
            let Some((params, rest)) = captures(row.path, segments) else {
                continue;
            };
            if row.method.as_ref() == method {
                return Ok(Self { row, params, rest });
            }
            allow.push(&row.method);
        }
        if allow.is_empty() {
            return Err(RouteError::NotFound);
        }
        let allow: Vec<&str> = ALLOW_ORDER
            .iter()
            .filter(|m| allow.contains(m))
            .map(AsRef::as_ref)
            .collect();
        Err(RouteError::MethodNotAllowed(allow.join(", ")))
    }

    pub(crate) fn endpoint(&self) -> Endpoint {
        self.row.endpoint
    }

    /// The first `{name}` segment (`{id}`, `{namespace}`); empty if the path has none.
    pub(crate) fn param(&self) -> &'a str {
        self.params.first().copied().unwrap_or_default()
    }
}

/// The `{name}` captures and the `{path}` rest of `segments` under `template`, if it matches.
fn captures<'a>(template: &str, segments: &'a [&'a str]) -> Option<(Vec<&'a str>, &'a [&'a str])> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last && *part == "{path}" {
            let rest = segments.get(i..).filter(|r| !r.is_empty())?;
            return Some((params, rest));
        }
        let seg = *segments.get(i)?;
        if part.starts_with('{') {
            params.push(seg);
        } else if *part != seg {
            return None;
        }
    }
    (segments.len() == parts.len()).then_some((params, &[]))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The demo's routes (`LOCKER_DEMO`), which are not part of the API nor of `openapi.json`.
    const DEMO: &str = "/demo/";

    fn segs(path: &str) -> Vec<&str> {
        path.trim_start_matches('/').split('/').collect()
    }

    #[test]
    fn every_route_of_openapi_is_in_the_table_and_back() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    documented.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let table: BTreeSet<String> = TABLE
            .iter()
            .filter(|r| !r.path.starts_with(DEMO))
            .map(|r| format!("{} {}", r.method.as_ref(), r.path))
            .collect();
        assert_eq!(
            documented.difference(&table).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "in openapi.json, not routed"
        );
        assert_eq!(
            table.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "routed, not in openapi.json"
        );
    }

    #[test]
    fn every_row_is_reached_by_its_own_path() {
        for row in TABLE {
            let path = row
                .path
                .replace("{path}", "a/b.txt")
                .replace(['{', '}'], "");
            let s = segs(&path);
            let route = Route::parse(row.method.as_ref(), &s).unwrap();
            assert!(
                std::ptr::eq(route.row, row),
                "{} {}",
                row.method.as_ref(),
                row.path
            );
        }
    }

    #[test]
    fn captures_and_refusals() {
        let s = segs("/v1/uploads/up_1/complete");
        let r = Route::parse("POST", &s).unwrap();
        assert_eq!((r.endpoint(), r.param()), (Endpoint::Complete, "up_1"));

        let s = segs("/api/files/corp/a/b/c.txt");
        let r = Route::parse("GET", &s).unwrap();
        assert_eq!(r.endpoint(), Endpoint::GatewayGet);
        assert_eq!((r.param(), r.rest), ("corp", &["a", "b", "c.txt"][..]));

        let s = segs("/v1/files");
        assert_eq!(
            Route::parse("GET", &s).unwrap().endpoint(),
            Endpoint::ListFiles
        );

        // A path without its `{path}` is no route; nor is an unknown one.
        for path in [
            "/api/files/corp",
            "/v1/nothing-here",
            "/v1/uploads/a/b",
            "/",
        ] {
            let s = segs(path);
            assert_eq!(
                Route::parse("GET", &s).unwrap_err(),
                RouteError::NotFound,
                "{path}"
            );
        }

        // A method the runtime does not know is no GET.
        let s = segs("/v1/logs");
        assert_eq!(
            Route::parse("QUERY", &s).unwrap_err(),
            RouteError::MethodNotAllowed("GET".into())
        );
        let s = segs("/v1/buckets");
        assert_eq!(
            Route::parse("DELETE", &s).unwrap_err(),
            RouteError::MethodNotAllowed("GET, POST".into())
        );
        let s = segs("/api/files/corp/x");
        assert_eq!(
            Route::parse("POST", &s).unwrap_err(),
            RouteError::MethodNotAllowed("GET, PUT, DELETE".into())
        );
    }
}
