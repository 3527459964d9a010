//! The registry over D1 (SQLite). Every SQL statement of the Worker is in this module.

mod backup;
mod blobs;
mod buckets;
mod files;
mod keys;
mod log;
mod moves;
mod parts;
mod reconcile;
mod stats;
mod uploads;

#[cfg(test)]
pub(crate) use blobs::{DEDUP_MANY_SQL, DEDUP_SQL};
#[cfg(test)]
pub(crate) use buckets::{ROUTES_SQL, ROUTE_SQL};
#[cfg(test)]
pub(crate) use files::{LIST_OPEN_SQL, LIST_PREFIX_SQL, LIVE_BY_SHA256_SQL};
#[cfg(test)]
pub(crate) use keys::{KEYS_ALL_SQL, KEYS_NAMESPACES_SQL, KEYS_TENANT_SQL};
#[cfg(test)]
pub(crate) use parts::PARTS_SQL;
#[cfg(test)]
pub(crate) use stats::{stats_buckets_sql, REACH_NAMESPACES, REACH_TENANT, STAT_COUNTS};
#[cfg(test)]
pub(crate) use uploads::{SWEEP_SQL, UPLOADS_MANY_SQL, VERIFYING_SQL};

use std::cell::Cell;

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::config::{bindings, DefaultBucket};
use crate::error::{ApiError, ApiResult, ErrorKind};

/// The registry in the `DB` binding, as one request (or one sweep) sees it.
pub(crate) struct D1Registry {
    db: D1Database,
    /// The request's time, Unix milliseconds: what every write stamps.
    now_ms: u64,
    /// Registered on first use by the batches that reference it.
    default_bucket: DefaultBucket,
    /// What D1 reported doing for this registry's statements so far.
    work: Cell<D1Work>,
}

/// D1's own account of the work of some statements: how many ran, and the rows each read and
/// wrote as its result's `meta` reports them (index entries included, as D1 bills them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct D1Work {
    pub statements: u64,
    pub rows_read: u64,
    pub rows_written: u64,
}

impl D1Work {
    /// The `x-locker-d1` header's value (see [`METER_VAR`]).
    pub(crate) fn header(&self) -> String {
        format!(
            "statements={}; rows_read={}; rows_written={}",
            self.statements, self.rows_read, self.rows_written
        )
    }
}

/// The var that, when `on`, makes every operation's answer carry its D1 work in the
/// `x-locker-d1` header: for the benchmark's table of what a reserve or a complete costs in
/// D1. `cargo xtask bench` sets it; wrangler.toml does not, so a deployment never sends it.
pub(crate) const METER_VAR: &str = "LOCKER_D1_METER";

impl D1Registry {
    pub(crate) fn new(db: D1Database, now_ms: u64, default_bucket: DefaultBucket) -> Self {
        Self {
            db,
            now_ms,
            default_bucket,
            work: Cell::new(D1Work::default()),
        }
    }

    /// The D1 work of every statement this registry ran so far.
    pub(crate) fn work(&self) -> D1Work {
        self.work.get()
    }

    /// Adds one statement's result to [`Self::work`].
    fn count(&self, result: &D1Result) {
        let meta = result.meta().ok().flatten();
        let rows = |v: Option<usize>| v.map_or(0, |v| v as u64);
        let mut work = self.work.get();
        work.statements += 1;
        work.rows_read += rows(meta.as_ref().and_then(|m| m.rows_read));
        work.rows_written += rows(meta.as_ref().and_then(|m| m.rows_written));
        self.work.set(work);
    }

    /// Runs one statement for its meta only.
    pub(crate) async fn run(&self, statement: D1PreparedStatement) -> ApiResult<()> {
        let result = statement.run().await?;
        self.count(&result);
        Ok(())
    }

    /// A prepared statement with its arguments bound.
    pub(crate) fn stmt(&self, sql: &str, args: &[JsValue]) -> ApiResult<D1PreparedStatement> {
        Ok(self.db.prepare(sql).bind(args)?)
    }

    /// The first row of a query, parsed; `what` names the row in the error a bad value gives.
    pub(crate) async fn first<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Option<T>> {
        // `all`, not `first`: D1 runs the same query either way (its `first` is `all` and
        // the first row), but only `all` answers the meta that [`Self::work`] counts.
        let result = self.stmt(sql, args)?.all().await?;
        self.count(&result);
        let rows = result.results::<T>().map_err(|e| bad_row(what, &e))?;
        Ok(rows.into_iter().next())
    }

    /// All rows of a query, parsed; `what` names the rows in the error a bad value gives.
    pub(crate) async fn all<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        args: &[JsValue],
    ) -> ApiResult<Vec<T>> {
        let result = self.stmt(sql, args)?.all().await?;
        self.count(&result);
        result.results::<T>().map_err(|e| bad_row(what, &e))
    }

    /// Runs statements as one D1 batch (one transaction, one round trip); returns each
    /// statement's result.
    pub(crate) async fn batch_results(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> ApiResult<Vec<D1Result>> {
        let results = self.db.batch(statements).await?;
        for result in &results {
            self.count(result);
        }
        Ok(results)
    }

    /// Runs statements as one D1 batch (one transaction); returns each statement's change count.
    pub(crate) async fn batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> ApiResult<Vec<usize>> {
        change_counts(&self.batch_results(statements).await?)
    }

    /// `INSERT OR IGNORE` of the default bucket's row, put first in every batch that references
    /// it, so a fresh database needs no manual registration and no file points at an unknown
    /// bucket.
    pub(crate) fn register_default(&self) -> ApiResult<D1PreparedStatement> {
        let b = &self.default_bucket;
        let args: [JsValue; 6] = [
            s(b.id.as_str()),
            s(&b.name),
            s(bindings::BLOBS),
            s(&b.account_id),
            s(b.jurisdiction.as_deref().unwrap_or("default")),
            n(self.now_ms),
        ];
        self.stmt(
            "INSERT OR IGNORE INTO buckets \
             (id, name, provider, transport, binding, account_id, jurisdiction, active, created_at) \
             VALUES (?1, ?2, 'r2', 'worker', ?3, ?4, ?5, 1, ?6)",
            &args,
        )
    }
}

/// Each statement's change count, of a batch's results.
pub(crate) fn change_counts(results: &[D1Result]) -> ApiResult<Vec<usize>> {
    results
        .iter()
        .map(|r| Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0)))
        .collect()
}

/// The first row of statement `i` of a batch's results, parsed.
pub(crate) fn first_row<T: DeserializeOwned>(
    results: &[D1Result],
    i: usize,
    what: &str,
) -> ApiResult<Option<T>> {
    let Some(result) = results.get(i) else {
        return Ok(None);
    };
    let rows = result.results::<T>().map_err(|e| bad_row(what, &e))?;
    Ok(rows.into_iter().next())
}

/// A row that does not parse: a value outside its set, or a column of the wrong type. The
/// registry was written by something else than this Worker, or by an older one.
fn bad_row(what: &str, e: &worker::Error) -> ApiError {
    worker::console_error!("registry: a {what} row does not parse: {e}");
    ApiError::new(
        ErrorKind::Internal,
        format!("the registry holds a {what} row this Worker cannot read"),
    )
}

/// The change count of statement `i` of a batch.
pub(crate) fn changed(changes: &[usize], i: usize) -> bool {
    changes.get(i).copied().unwrap_or(0) > 0
}

/// Shorthands for binding D1 arguments.
pub(crate) fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}
pub(crate) fn n(v: u64) -> JsValue {
    // D1 numbers are f64; sizes and times stay far below 2^53.
    JsValue::from_f64(v as f64)
}
pub(crate) fn opt(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
}
