//! `files`: a tenant's paths and the blob each points at.

use locker_core::prefix::upper_bound;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

use super::log::LOG_ARGS;
use super::{change_counts, changed, first_row, n, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{FilePage, FileRow, FileSpec, Files, LogRecord};

/// The columns of [`FileRow`], as a literal so that statements can be `concat!`ed constants
/// (the query-plan test runs those very strings).
macro_rules! file_columns {
    () => {
        "namespace, path, sha256, bucket_id, size, content_type, filename, created_at, updated_at"
    };
}

/// One page of a namespace's files whose path starts with a prefix, after a cursor: `?3` is
/// the prefix and `?4` its [`upper_bound`], a range on `path` that the primary key (tenant,
/// namespace, path) serves directly, stopping where the prefix ends.
pub(crate) const LIST_PREFIX_SQL: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files WHERE tenant = ?1 AND namespace = ?2 AND path >= ?3 AND path < ?4 \
     AND path > ?5 ORDER BY path LIMIT ?6"
);

/// [`LIST_PREFIX_SQL`] for a prefix without an upper bound (empty, or only U+10FFFF).
pub(crate) const LIST_OPEN_SQL: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files WHERE tenant = ?1 AND namespace = ?2 AND path >= ?3 \
     AND path > ?4 ORDER BY path LIMIT ?5"
);

/// Any live file of a tenant with these bytes (`?2` the SHA-256): the signed download URL is
/// good only while one exists. Served by `files_blob` (tenant, sha256).
pub(crate) const LIVE_BY_SHA256_SQL: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files WHERE tenant = ?1 AND sha256 = ?2 LIMIT 1"
);

/// [`LIVE_BY_SHA256_SQL`], a file other than `?3/?4` first.
const OTHER_BY_SHA256_SQL: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files WHERE tenant = ?1 AND sha256 = ?2 \
     ORDER BY (namespace = ?3 AND path = ?4) LIMIT 1"
);

#[derive(Deserialize)]
pub(super) struct ShaRow {
    pub(super) sha256: String,
}

/// The sha256 a tenant's path `?1/?2/?3` points at: the first statement of the batches that
/// repoint a path, so that they answer what they replaced.
pub(super) const FILE_SHA_SQL: &str =
    "SELECT sha256 FROM files WHERE tenant = ?1 AND namespace = ?2 AND path = ?3";

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
    async fn file(&self, tenant: &str, namespace: &str, path: &str) -> ApiResult<Option<FileRow>> {
        self.first(
            "files",
            concat!(
                "SELECT ",
                file_columns!(),
                " FROM files WHERE tenant = ?1 AND namespace = ?2 AND path = ?3"
            ),
            &[s(tenant), s(namespace), s(path)],
        )
        .await
    }

    async fn list_files(&self, page: &FilePage<'_>) -> ApiResult<Vec<FileRow>> {
        let (tenant, ns) = (s(page.tenant), s(page.namespace));
        let (prefix, cursor, limit) = (s(page.prefix), s(page.cursor), n(page.limit));
        match upper_bound(page.prefix) {
            Some(upper) => {
                let args = [tenant, ns, prefix, s(&upper), cursor, limit];
                self.all("files", LIST_PREFIX_SQL, &args).await
            }
            None => {
                let args = [tenant, ns, prefix, cursor, limit];
                self.all("files", LIST_OPEN_SQL, &args).await
            }
        }
    }

    async fn file_with_sha256(
        &self,
        tenant: &str,
        sha256: &str,
        other_than: Option<(&str, &str)>,
    ) -> ApiResult<Option<FileRow>> {
        match other_than {
            None => {
                self.first("files", LIVE_BY_SHA256_SQL, &[s(tenant), s(sha256)])
                    .await
            }
            Some((ns, path)) => {
                let args = [s(tenant), s(sha256), s(ns), s(path)];
                self.first("files", OTHER_BY_SHA256_SQL, &args).await
            }
        }
    }

    async fn delete_file(
        &self,
        tenant: &str,
        namespace: &str,
        path: &str,
        sha256: &str,
        log: &LogRecord,
    ) -> ApiResult<bool> {
        let changes = self
            .batch(vec![
                self.stmt(
                    "DELETE FROM files WHERE tenant = ?1 AND namespace = ?2 AND path = ?3 \
                     AND sha256 = ?4",
                    &[s(tenant), s(namespace), s(path), s(sha256)],
                )?,
                self.log_statement(log, "", &[])?,
            ])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn link_files(
        &self,
        links: &[(&FileSpec, &LogRecord)],
    ) -> ApiResult<Vec<Option<Option<String>>>> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        // Each log row under its upsert's own condition: written exactly when the file was.
        let first = LOG_ARGS + 1;
        let condition = format!(
            " AND EXISTS (SELECT 1 FROM blobs b WHERE b.tenant = ?{first} \
             AND b.sha256 = ?{} AND b.verified = 1 AND b.size = ?{} \
             AND b.bucket_id IN (SELECT id FROM buckets))",
            first + 1,
            first + 2
        );
        let mut statements = Vec::with_capacity(3 * links.len());
        for (spec, log) in links {
            let extra = [
                s(spec.tenant.as_str()),
                s(&spec.sha256.to_string()),
                n(spec.size),
            ];
            // What the path points at now, read in the upsert's transaction: exactly what it
            // replaces.
            statements.extend([
                self.stmt(
                    FILE_SHA_SQL,
                    &[
                        s(spec.tenant.as_str()),
                        s(spec.namespace.as_str()),
                        s(spec.path.as_str()),
                    ],
                )?,
                self.upsert_file(spec, "", &[])?,
                self.log_statement(log, &condition, &extra)?,
            ]);
        }
        let results = self.batch_results(statements).await?;
        (0..links.len())
            .map(|i| {
                let replaced: Option<ShaRow> = first_row(&results, 3 * i, "files")?;
                let changes = change_counts(results.get(3 * i + 1..3 * i + 2).unwrap_or_default())?;
                Ok(changed(&changes, 0).then(|| replaced.map(|r| r.sha256)))
            })
            .collect()
    }
}
