//! The access log's INSERT, alone or as the last statement of a batch.

use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use locker_core::api::LogEntry;

use super::{n, opt, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{AccessLog, LogQuery, LogRecord};

/// Parameters of the row's INSERT; a condition numbers its own from `LOG_ARGS + 1`.
pub(super) const LOG_ARGS: usize = 12;

impl D1Registry {
    /// The INSERT of `log` that writes its row only if `condition` (SQL starting with ` AND `,
    /// its parameters numbered from `LOG_ARGS + 1` on, bound from `extra`) holds when it runs,
    /// so a batch logs only what it really did.
    pub(crate) fn log_statement(
        &self,
        log: &LogRecord,
        condition: &str,
        extra: &[JsValue],
    ) -> ApiResult<D1PreparedStatement> {
        let row: [JsValue; LOG_ARGS] = [
            opt(log.tenant.as_deref()),
            opt(log.bucket_id.as_deref()),
            s(log.operation.as_str()),
            opt(log.sha256.as_deref()),
            opt(log.namespace.as_deref()),
            opt(log.path.as_deref()),
            s(&log.server),
            opt(log.key_id.as_deref()),
            n(u64::from(log.success)),
            opt(log.error.as_deref()),
            n(log.bytes),
            n(log.ts),
        ];
        let mut args = row.to_vec();
        args.extend_from_slice(extra);
        self.stmt(
            &format!(
                "INSERT INTO access_log (tenant, bucket_id, operation, sha256, namespace, path, \
                 server, key_id, success, error, bytes, ts) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 WHERE 1{condition}"
            ),
            &args,
        )
    }
}

impl AccessLog for D1Registry {
    async fn append(&self, log: &LogRecord) -> ApiResult<()> {
        self.run(self.log_statement(log, "", &[])?).await
    }

    async fn log_page(&self, query: &LogQuery) -> ApiResult<Vec<LogEntry>> {
        let (sql, params) = query.statement();
        let args: Vec<JsValue> = params.iter().map(Param::js).collect();
        self.all("access_log", &sql, &args).await
    }
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
