//! `files`: a tenant's paths and the blob each points at.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use super::log::LOG_ARGS;
use super::{changed, n, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{FileSpec, Files, LogRecord};

#[derive(Deserialize)]
struct ShaRow {
    sha256: String,
}

impl D1Registry {
    /// The upsert of a file row. It only writes when a verified blob with the same size exists,
    /// so a file can never point at unverified bytes, even if the blob vanished since it was
    /// read; `condition` (SQL starting with ` AND `, parameters from `?9` on, bound from
    /// `extra`) restricts it further.
    pub(super) fn upsert_file(
        &self,
        spec: &FileSpec,
        condition: &str,
        extra: &[JsValue],
    ) -> ApiResult<D1PreparedStatement> {
        let mut args = vec![
            s(spec.tenant.as_str()),
            s(spec.namespace.as_str()),
            s(spec.path.as_str()),
            s(&spec.sha256.to_string()),
            n(spec.size),
            s(&spec.content_type),
            s(&spec.filename),
            n(self.now_ms),
        ];
        args.extend_from_slice(extra);
        self.stmt(
            &format!(
                "INSERT INTO files (tenant, namespace, path, sha256, bucket_id, size, \
                 content_type, filename, created_at, updated_at) \
                 SELECT ?1, ?2, ?3, ?4, b.bucket_id, ?5, ?6, ?7, ?8, ?8 FROM blobs b \
                 WHERE b.tenant = ?1 AND b.sha256 = ?4 AND b.verified = 1 AND b.size = ?5 \
                   AND b.bucket_id IN (SELECT id FROM buckets){condition} \
                 ON CONFLICT (tenant, namespace, path) DO UPDATE SET sha256 = excluded.sha256, \
                   bucket_id = excluded.bucket_id, size = excluded.size, \
                   content_type = excluded.content_type, filename = excluded.filename, \
                   updated_at = excluded.updated_at"
            ),
            &args,
        )
    }
}

impl Files for D1Registry {
    async fn file_sha256(
        &self,
        tenant: &str,
        namespace: &str,
        path: &str,
    ) -> ApiResult<Option<String>> {
        let row: Option<ShaRow> = self
            .first(
                "files",
                "SELECT sha256 FROM files WHERE tenant = ?1 AND namespace = ?2 AND path = ?3",
                &[s(tenant), s(namespace), s(path)],
            )
            .await?;
        Ok(row.map(|r| r.sha256))
    }

    async fn link_file(&self, spec: &FileSpec, log: &LogRecord) -> ApiResult<bool> {
        // The log row under the upsert's own condition: written exactly when the file was.
        let first = LOG_ARGS + 1;
        let condition = format!(
            " AND EXISTS (SELECT 1 FROM blobs b WHERE b.tenant = ?{first} \
             AND b.sha256 = ?{} AND b.verified = 1 AND b.size = ?{} \
             AND b.bucket_id IN (SELECT id FROM buckets))",
            first + 1,
            first + 2
        );
        let extra = [
            s(spec.tenant.as_str()),
            s(&spec.sha256.to_string()),
            n(spec.size),
        ];
        let changes = self
            .batch(vec![
                self.upsert_file(spec, "", &[])?,
                self.log_statement(log, &condition, &extra)?,
            ])
            .await?;
        Ok(changed(&changes, 0))
    }
}
