//! The access log: exactly one row per operation, written by the dispatcher unless the
//! operation already wrote it inside its own D1 batch. Rows never hold a signature, a token or
//! a key secret: only key ids, refs, digests and error messages that echo no credential.

use locker_core::api::{LogPage, Operation};

use crate::app::App;
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::registry::{AccessLog, LogQuery, LogRecord, Reach};

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

/// `GET /v1/logs?since=&until=&operation=&bucket_id=&cursor=&limit=`, newest first.
/// A tenant admin sees its tenant's rows, one limited to some namespaces only theirs; the
/// bootstrap admin sees all.
pub(crate) async fn list(
    app: &App,
    who: &Principal,
    query: &[(String, String)],
) -> ApiResult<LogPage> {
    who.require(Op::Admin, None)?;
    let query = Params(query);
    let reach = Reach::of(who)?;
    let limit = query.number("limit")?.unwrap_or(100).clamp(1, 1000);
    let filters = LogQuery {
        tenant: reach.tenant().map(str::to_owned),
        namespaces: reach.namespaces().map(str::to_owned),
        since: query.number("since")?,
        until: query.number("until")?,
        operation: query.get("operation").map(str::to_owned),
        bucket_id: query.get("bucket_id").map(str::to_owned),
        cursor: query.number("cursor")?,
        limit,
    };
    let entries = app.registry().log_page(&filters).await?;
    let next = (entries.len() as u64 == limit)
        .then(|| entries.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(LogPage {
        entries,
        cursor: next,
    })
}
