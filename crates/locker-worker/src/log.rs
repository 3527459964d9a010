//! The access log: exactly one row per operation, written by the dispatcher unless the
//! operation already wrote it inside its own D1 batch. Rows never hold a signature, a token or
//! a key secret: only key ids, refs, digests and error messages that echo no credential.

use locker_core::api::Operation;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use crate::app::{n, s, App};
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::keys::Reach;
use crate::registry::{AccessLog, LogRecord};

/// What one request did, filled in by its handler as facts become known.
#[derive(Default, Debug)]
pub(crate) struct LogEntry {
    /// What the request does, from its route (see [`crate::routes::TABLE`]); a handler may
    /// name it more precisely (`dedup`), and the scheduled sweep logs `expire`. Refusals are
    /// logged as `denied` or `failed`.
    /// `None` means the request is not an operation (health, docs, preflight): no row.
    pub operation: Option<Operation>,
    pub tenant: Option<String>,
    pub bucket_id: Option<String>,
    pub sha256: Option<String>,
    pub namespace: Option<String>,
    pub path: Option<String>,
    pub key_id: Option<String>,
    pub bytes: u64,
    /// Set once the row was written (inside a batch), so the dispatcher does not write another.
    pub written: bool,
}

impl LogEntry {
    /// The row this entry writes, as `error` ends the request (or `None`: it succeeded).
    pub(crate) fn record(&self, app: &App, error: Option<&ApiError>) -> LogRecord {
        let operation = match error {
            Some(e) if e.is_denial() => Operation::Denied,
            Some(_) => Operation::Failed,
            None => self.operation.unwrap_or(Operation::Unknown),
        };
        let message = error.map(|e| {
            format!(
                "{}: {} ({})",
                e.kind.status(),
                e.message,
                self.operation.unwrap_or(Operation::Request).as_str()
            )
        });
        LogRecord {
            tenant: self.tenant.clone(),
            bucket_id: self.bucket_id.clone(),
            operation,
            sha256: self.sha256.clone(),
            namespace: self.namespace.clone(),
            path: self.path.clone(),
            server: app.server.clone(),
            key_id: self.key_id.clone(),
            success: error.is_none(),
            error: message,
            bytes: self.bytes,
            ts: app.now_ms,
        }
    }

    /// The INSERT for this entry; the caller runs it (alone or in a batch) and marks `written`.
    pub(crate) fn statement(
        &self,
        app: &App,
        error: Option<&ApiError>,
    ) -> ApiResult<D1PreparedStatement> {
        app.d1().log_statement(&self.record(app, error), "", &[])
    }

    /// Writes the row now, unless it was written already or this is not an operation.
    pub(crate) async fn write(&mut self, app: &App, error: Option<&ApiError>) -> ApiResult<()> {
        if self.written || self.operation.is_none() {
            return Ok(());
        }
        self.written = true;
        app.registry().append(&self.record(app, error)).await?;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct LogRow {
    id: i64,
    tenant: Option<String>,
    bucket_id: Option<String>,
    operation: String,
    sha256: Option<String>,
    namespace: Option<String>,
    path: Option<String>,
    server: String,
    key_id: Option<String>,
    success: u8,
    error: Option<String>,
    bytes: i64,
    ts: i64,
}

/// A value bound to a statement, kept typed (not yet a `JsValue`) so that the query-plan test
/// binds the same statement to SQLite on the host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(u64),
}

impl Param {
    fn js(&self) -> JsValue {
        match self {
            Param::Text(v) => s(v),
            Param::Int(v) => n(*v),
        }
    }
}

/// The filters of one page of `GET /v1/logs`, and whose rows the caller may see.
#[derive(Debug, Default)]
pub(crate) struct LogQuery {
    /// `None`: every tenant's rows (the bootstrap admin only).
    pub tenant: Option<String>,
    /// `Some`: only rows of these namespaces, a JSON array (an admin key limited to some
    /// namespaces; rows without a namespace are tenant-wide and stay hidden from it).
    pub namespaces: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub operation: Option<String>,
    pub bucket_id: Option<String>,
    pub cursor: Option<u64>,
    pub limit: u64,
}

impl LogQuery {
    /// The statement and its parameters, numbered in order. Newest first by `id`: the
    /// indexes (tenant, id) and (tenant, namespace, id) serve a tenant's page without a sort.
    pub(crate) fn statement(&self) -> (String, Vec<Param>) {
        let mut sql = String::from(
            "SELECT id, tenant, bucket_id, operation, sha256, namespace, path, server, key_id, \
             success, error, bytes, ts FROM access_log WHERE 1 = 1",
        );
        let mut args: Vec<Param> = Vec::new();
        let mut bind = |clause: &str, v: Param| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        let text = |v: &str| Param::Text(v.to_owned());
        if let Some(t) = &self.tenant {
            bind(" AND tenant = ?", text(t));
        }
        if let Some(ns) = &self.namespaces {
            bind(
                " AND namespace IN (SELECT value FROM json_each(?))",
                text(ns),
            );
        }
        if let Some(v) = self.since {
            bind(" AND ts >= ?", Param::Int(v));
        }
        if let Some(v) = self.until {
            bind(" AND ts < ?", Param::Int(v));
        }
        if let Some(v) = &self.operation {
            bind(" AND operation = ?", text(v));
        }
        if let Some(v) = &self.bucket_id {
            bind(" AND bucket_id = ?", text(v));
        }
        if let Some(v) = self.cursor {
            bind(" AND id < ?", Param::Int(v));
        }
        bind(" ORDER BY id DESC LIMIT ?", Param::Int(self.limit));
        (sql, args)
    }
}

/// `GET /v1/logs?since=&until=&operation=&bucket_id=&cursor=&limit=`, newest first.
/// A tenant admin sees its tenant's rows, one limited to some namespaces only theirs; the
/// bootstrap admin sees all.
pub(crate) async fn list(
    app: &App,
    who: &Principal,
    query: &[(String, String)],
) -> ApiResult<serde_json::Value> {
    who.require(Op::Admin, None)?;
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let int = |k: &str| -> ApiResult<Option<u64>> {
        get(k)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::new(ErrorKind::InvalidQuery, format!("{k} must be a number"))
                })
            })
            .transpose()
    };
    let reach = Reach::of(who)?;
    let limit = int("limit")?.unwrap_or(100).clamp(1, 1000);
    let filters = LogQuery {
        tenant: reach.tenant().map(str::to_owned),
        namespaces: reach.namespaces().map(str::to_owned),
        since: int("since")?,
        until: int("until")?,
        operation: get("operation").map(str::to_owned),
        bucket_id: get("bucket_id").map(str::to_owned),
        cursor: int("cursor")?,
        limit,
    };
    let (sql, params) = filters.statement();
    let args: Vec<JsValue> = params.iter().map(Param::js).collect();
    let rows: Vec<LogRow> = app.all(&sql, &args).await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(serde_json::json!({ "entries": rows, "cursor": next }))
}
