//! The access log's INSERT, alone or as the last statement of a batch.

use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use super::{n, opt, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{AccessLog, LogRecord};

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
        self.log_statement(log, "", &[])?.run().await?;
        Ok(())
    }
}
