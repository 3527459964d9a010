//! `uploads`: reservations, and the batches that commit, close and expire them.

use locker_core::api::UploadState;
use wasm_bindgen::JsValue;

use super::files::{ShaRow, FILE_SHA_SQL};
use super::log::LOG_ARGS;
use super::{change_counts, changed, first_row, n, opt, s, D1Registry};
use crate::error::ApiResult;
use crate::registry::{CommitItem, Committed, FileSpec, LogRecord, NewUpload, UploadRow, Uploads};

const UPLOAD_COLUMNS: &str = "id, tenant, namespace, path, sha256, size, content_type, \
     filename, bucket_id, key, state, expires_at, multipart_id, part_size, part_count, \
     completing_at";

/// Pending reservations past `?1`, oldest first (the query-plan test runs this string).
pub(crate) const SWEEP_SQL: &str =
    "SELECT id, tenant, namespace, path, sha256, size, content_type, filename, \
     bucket_id, key, state, expires_at, multipart_id, part_size, part_count, completing_at \
     FROM uploads WHERE state = 'pending' AND expires_at < ?1 ORDER BY expires_at LIMIT ?2";

/// The reservations whose ids are in the JSON array `?1`, of any tenant (the query-plan test
/// runs this string). One bound array, not one parameter per id: D1 binds at most 100.
pub(crate) const UPLOADS_MANY_SQL: &str =
    "SELECT id, tenant, namespace, path, sha256, size, content_type, filename, \
     bucket_id, key, state, expires_at, multipart_id, part_size, part_count, completing_at \
     FROM uploads WHERE id IN (SELECT value FROM json_each(?1))";

/// Uploads awaiting the scheduled check whose lock is free or older than `?1`, oldest
/// reservation first (the query-plan test runs this string).
pub(crate) const VERIFYING_SQL: &str =
    "SELECT id, tenant, namespace, path, sha256, size, content_type, filename, \
     bucket_id, key, state, expires_at, multipart_id, part_size, part_count, completing_at \
     FROM uploads WHERE state = 'verifying' AND (completing_at IS NULL OR completing_at < ?1) \
     ORDER BY expires_at LIMIT ?2";

/// SQL condition: reservation `?{first}` went to `state` at `?{first + 1}` (the time of the
/// batch that changed it), so a statement later in that batch runs only if the change
/// happened.
fn reservation_is(state: UploadState, first: usize) -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM uploads WHERE id = ?{first} AND state = '{}' \
         AND finished_at = ?{})",
        state.as_str(),
        first + 1
    )
}

/// The condition and arguments a statement of `args_before` parameters appends so that it
/// runs only if reservation `guard` was committed in this batch; none without a guard.
fn guard(guard: Option<&str>, args_before: usize, at: u64) -> (String, Vec<JsValue>) {
    match guard {
        Some(id) => (
            reservation_is(UploadState::Committed, args_before + 1),
            vec![s(id), n(at)],
        ),
        None => (String::new(), Vec::new()),
    }
}

impl D1Registry {
    /// The insert of a verified blob (or the verification of an existing row).
    fn insert_blob(
        &self,
        spec: &FileSpec,
        bucket_id: &str,
        upload_id: Option<&str>,
    ) -> ApiResult<worker::D1PreparedStatement> {
        let mut args = vec![
            s(spec.tenant.as_str()),
            s(&spec.sha256.to_string()),
            s(bucket_id),
            s(spec.key().as_str()),
            n(spec.size),
            s(&spec.content_type),
            n(self.now_ms),
        ];
        let (condition, extra) = guard(upload_id, args.len(), self.now_ms);
        args.extend(extra);
        self.stmt(
            &format!(
                "INSERT INTO blobs (tenant, sha256, bucket_id, key, size, content_type, \
                 verified, created_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, 1, ?7 WHERE 1{condition} \
                 ON CONFLICT (tenant, sha256) DO UPDATE SET verified = 1"
            ),
            &args,
        )
    }

    /// One commit's statements, after the default bucket's registration: the read of what the
    /// path points at now, in the same transaction as the upsert that replaces it (so the blob
    /// it answers is exactly the one replaced); with a reservation, its close, and the blob, the
    /// file and the log row written only if that close worked: a reservation aborted or expired
    /// meanwhile (whose bytes may be deleted already) commits nothing. [`committed`] reads
    /// their results.
    fn commit_statements(
        &self,
        spec: &FileSpec,
        bucket_id: &str,
        upload_id: Option<&str>,
        log: &LogRecord,
    ) -> ApiResult<Vec<worker::D1PreparedStatement>> {
        let mut statements = vec![self.stmt(
            FILE_SHA_SQL,
            &[
                s(spec.tenant.as_str()),
                s(spec.namespace.as_str()),
                s(spec.path.as_str()),
            ],
        )?];
        if let Some(id) = upload_id {
            statements.push(self.stmt(
                "UPDATE uploads SET state = 'committed', finished_at = ?2 \
                 WHERE id = ?1 AND state IN ('pending', 'verifying')",
                &[s(id), n(self.now_ms)],
            )?);
        }
        let (file_guard, file_args) = guard(upload_id, 8, self.now_ms);
        let (log_guard, log_args) = guard(upload_id, LOG_ARGS, self.now_ms);
        statements.extend([
            self.insert_blob(spec, bucket_id, upload_id)?,
            self.upsert_file(spec, &file_guard, &file_args)?,
            self.log_statement(log, &log_guard, &log_args)?,
        ]);
        Ok(statements)
    }

    /// The INSERT of a pending reservation.
    fn insert_upload(&self, upload: &NewUpload<'_>) -> ApiResult<worker::D1PreparedStatement> {
        let spec = upload.spec;
        let (part_size, part_count) = match upload.parts {
            Some((size, count)) => (n(size), n(u64::from(count))),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let args: [JsValue; 16] = [
            s(upload.id),
            s(spec.tenant.as_str()),
            s(spec.namespace.as_str()),
            s(spec.path.as_str()),
            s(&spec.sha256.to_string()),
            n(spec.size),
            s(&spec.content_type),
            s(&spec.filename),
            s(upload.bucket_id),
            s(spec.key().as_str()),
            s(upload.key_id),
            n(self.now_ms),
            n(upload.expires_at_ms),
            opt(upload.multipart_id),
            part_size,
            part_count,
        ];
        self.stmt(
            "INSERT INTO uploads (id, tenant, namespace, path, sha256, size, content_type, \
             filename, bucket_id, key, key_id, created_at, expires_at, multipart_id, \
             part_size, part_count) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            &args,
        )
    }
}

impl Uploads for D1Registry {
    async fn upload(&self, id: &str) -> ApiResult<Option<UploadRow>> {
        self.first(
            "uploads",
            &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
            &[s(id)],
        )
        .await
    }

    async fn reserve(&self, upload: &NewUpload<'_>, log: &LogRecord) -> ApiResult<()> {
        self.batch(vec![
            self.register_default()?,
            self.insert_upload(upload)?,
            self.log_statement(log, "", &[])?,
        ])
        .await?;
        Ok(())
    }

    async fn reserve_many(
        &self,
        uploads: &[(NewUpload<'_>, LogRecord)],
        logs: &[LogRecord],
    ) -> ApiResult<()> {
        let mut statements = Vec::with_capacity(1 + 2 * uploads.len() + logs.len());
        if !uploads.is_empty() {
            statements.push(self.register_default()?);
        }
        for (upload, log) in uploads {
            statements.push(self.insert_upload(upload)?);
            statements.push(self.log_statement(log, "", &[])?);
        }
        for log in logs {
            statements.push(self.log_statement(log, "", &[])?);
        }
        if !statements.is_empty() {
            self.batch(statements).await?;
        }
        Ok(())
    }

    async fn commit(
        &self,
        spec: &FileSpec,
        bucket_id: &str,
        upload_id: Option<&str>,
        log: &LogRecord,
    ) -> ApiResult<Committed> {
        let mut statements = vec![self.register_default()?];
        statements.extend(self.commit_statements(spec, bucket_id, upload_id, log)?);
        let results = self.batch_results(statements).await?;
        committed(results.get(1..).unwrap_or_default(), upload_id.is_some())
    }

    async fn commit_many(
        &self,
        commits: &[CommitItem<'_>],
        logs: &[LogRecord],
    ) -> ApiResult<Vec<Committed>> {
        if commits.is_empty() && logs.is_empty() {
            return Ok(Vec::new());
        }
        // Each commit's statements in a row, as `commit` runs them, so each one's read of the
        // path sees the commits before it in this batch (a path completed twice replaces the
        // first blob, as two single commits in a row would); one guard per reservation.
        let mut statements = vec![self.register_default()?];
        let mut spans = Vec::with_capacity(commits.len());
        for c in commits {
            let mine = self.commit_statements(c.spec, c.bucket_id, c.upload_id, &c.log)?;
            spans.push((statements.len(), mine.len(), c.upload_id.is_some()));
            statements.extend(mine);
        }
        for log in logs {
            statements.push(self.log_statement(log, "", &[])?);
        }
        let results = self.batch_results(statements).await?;
        spans
            .into_iter()
            .map(|(at, len, guarded)| {
                committed(results.get(at..at + len).unwrap_or_default(), guarded)
            })
            .collect()
    }

    async fn uploads(&self, ids: &[String]) -> ApiResult<Vec<UploadRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(ids).map_err(|e| {
            crate::error::ApiError::new(
                crate::error::ErrorKind::Internal,
                format!("encoding upload ids: {e}"),
            )
        })?;
        self.all("uploads", UPLOADS_MANY_SQL, &[s(&list)]).await
    }

    async fn close_upload(
        &self,
        id: &str,
        (from, state): (UploadState, UploadState),
        log: Option<&LogRecord>,
    ) -> ApiResult<bool> {
        let mut statements = vec![self.stmt(
            "UPDATE uploads SET state = ?3, finished_at = ?2 WHERE id = ?1 AND state = ?4",
            &[s(id), n(self.now_ms), s(state.as_str()), s(from.as_str())],
        )?];
        if let Some(log) = log {
            statements.push(self.log_statement(
                log,
                &reservation_is(state, LOG_ARGS + 1),
                &[s(id), n(self.now_ms)],
            )?);
        }
        let changes = self.batch(statements).await?;
        Ok(changed(&changes, 0))
    }

    async fn defer_verification(&self, id: &str) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE uploads SET state = 'verifying', completing_at = NULL \
                 WHERE id = ?1 AND state = 'pending'",
                &[s(id)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn verifying_uploads(
        &self,
        stale_before_ms: u64,
        limit: u64,
    ) -> ApiResult<Vec<UploadRow>> {
        self.all("uploads", VERIFYING_SQL, &[n(stale_before_ms), n(limit)])
            .await
    }

    async fn lock_verification(&self, id: &str, stale_before_ms: u64) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE uploads SET completing_at = ?2 WHERE id = ?1 AND state = 'verifying' \
                 AND (completing_at IS NULL OR completing_at < ?3)",
                &[s(id), n(self.now_ms), n(stale_before_ms)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn expired_uploads(&self, cutoff_ms: u64, limit: u64) -> ApiResult<Vec<UploadRow>> {
        self.all("uploads", SWEEP_SQL, &[n(cutoff_ms), n(limit)])
            .await
    }
}

/// How one commit ended, from the results of its [`D1Registry::commit_statements`]
/// (`guarded`: with a reservation's close).
fn committed(results: &[worker::D1Result], guarded: bool) -> ApiResult<Committed> {
    let replaced: Option<ShaRow> = first_row(results, 0, "files")?;
    // Change counts of the statements after the read: [close,] blob, file, log.
    let changes = change_counts(results.get(1..).unwrap_or_default())?;
    let closed = usize::from(guarded);
    Ok(if guarded && !changed(&changes, 0) {
        Committed::Closed
    } else if !changed(&changes, closed + 1) {
        Committed::NoFile
    } else {
        Committed::Done {
            replaced: replaced.map(|r| r.sha256),
        }
    })
}
