//! `backups`, and the reads a backup makes of every registry table.

use serde::Deserialize;
use serde_json::Value;

use super::{changed, n, s, D1Registry};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{BackupRow, Backups, Cursor, Page};

const BACKUP_COLUMNS: &str =
    "id, state, started_at, finished_at, step, after, after_key, progress_at, manifest";

#[derive(Deserialize)]
struct Name {
    name: String,
}

#[derive(Deserialize)]
struct Max {
    n: Option<u64>,
}

/// A table name from locker-core's fixed list, checked again before it is put into SQL.
fn table_sql(table: &str) -> ApiResult<&str> {
    if locker_core::backup::TABLES.contains(&table) {
        Ok(table)
    } else {
        Err(ApiError::new(
            ErrorKind::Internal,
            format!("not a registry table: {table}"),
        ))
    }
}

/// The rowid of a page's last row (each row carries it as `_rowid`).
fn last_rowid(rows: &[Value]) -> Option<(u64, String)> {
    rows.last()
        .and_then(|r| r.get("_rowid"))
        .and_then(Value::as_u64)
        .map(|rowid| (rowid, String::new()))
}

/// The primary key of a page of `upload_parts`' last row: (number, upload_id).
fn last_part_key(rows: &[Value]) -> ApiResult<Option<(u64, String)>> {
    let Some(row) = rows.last() else {
        return Ok(None);
    };
    let number = row.get("number").and_then(Value::as_u64);
    let upload = row.get("upload_id").and_then(Value::as_str);
    match (number, upload) {
        (Some(number), Some(upload)) => Ok(Some((number, upload.to_owned()))),
        _ => Err(ApiError::new(
            ErrorKind::Internal,
            "an upload_parts row without its key",
        )),
    }
}

impl Backups for D1Registry {
    async fn schema_version(&self) -> ApiResult<String> {
        let row: Option<Name> = self
            .first(
                "d1_migrations",
                "SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await?;
        let name = row.map(|r| r.name).unwrap_or_default();
        Ok(name.trim_end_matches(".sql").to_owned())
    }

    async fn access_log_high_water(&self) -> ApiResult<u64> {
        let row: Option<Max> = self
            .first("access_log", "SELECT MAX(id) AS n FROM access_log", &[])
            .await?;
        Ok(row.and_then(|r| r.n).unwrap_or(0))
    }

    async fn running_backup(&self) -> ApiResult<Option<BackupRow>> {
        self.first(
            "backups",
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE state = 'running' \
                 ORDER BY started_at LIMIT 1"
            ),
            &[],
        )
        .await
    }

    async fn backup(&self, id: &str) -> ApiResult<Option<BackupRow>> {
        self.first(
            "backups",
            &format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?1"),
            &[s(id)],
        )
        .await
    }

    async fn complete_backups(&self) -> ApiResult<Vec<BackupRow>> {
        self.all(
            "backups",
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE state = 'complete' \
                 ORDER BY started_at DESC"
            ),
            &[],
        )
        .await
    }

    async fn start_backup(&self, id: &str, manifest: &str) -> ApiResult<bool> {
        // Only when none is running: two starts racing cannot both begin one.
        let changes = self
            .batch(vec![self.stmt(
                "INSERT INTO backups (id, state, started_at, step, after, after_key, \
                 progress_at, manifest) \
                 SELECT ?1, 'running', ?2, 0, 0, '', ?2, ?3 \
                 WHERE NOT EXISTS (SELECT 1 FROM backups WHERE state = 'running') \
                 ON CONFLICT (id) DO NOTHING",
                &[s(id), n(self.now_ms), s(manifest)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn save_backup(
        &self,
        id: &str,
        expected: &Cursor,
        progress: &Cursor,
        manifest: &str,
        complete: bool,
    ) -> ApiResult<bool> {
        // Conditional on the progress read: two runs continuing one backup at once cannot
        // both record the same page; the loser's part is overwritten by the winner's name
        // sequence or left unlisted (never in the manifest).
        let state = if complete { "complete" } else { "running" };
        let finished = if complete {
            n(self.now_ms)
        } else {
            wasm_bindgen::JsValue::NULL
        };
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE backups SET step = ?1, after = ?2, after_key = ?3, manifest = ?4, \
                 state = ?5, finished_at = ?6, progress_at = ?7 \
                 WHERE id = ?8 AND state = 'running' AND step = ?9 AND after = ?10 \
                 AND after_key = ?11",
                &[
                    n(progress.step),
                    n(progress.after),
                    s(&progress.after_key),
                    s(manifest),
                    s(state),
                    finished,
                    n(self.now_ms),
                    s(id),
                    n(expected.step),
                    n(expected.after),
                    s(&expected.after_key),
                ],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn abandon_backup(&self, id: &str, last_progress: u64) -> ApiResult<bool> {
        // Conditional on the progress seen: a run that wrote a page meanwhile keeps it.
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE backups SET state = 'abandoned', finished_at = ?1 \
                 WHERE id = ?2 AND state = 'running' \
                 AND COALESCE(progress_at, started_at) = ?3",
                &[n(self.now_ms), s(id), n(last_progress)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn abandoned_backups(&self) -> ApiResult<Vec<BackupRow>> {
        self.all(
            "backups",
            &format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE state = 'abandoned' \
                 ORDER BY started_at"
            ),
            &[],
        )
        .await
    }

    async fn forget_backup(&self, id: &str) -> ApiResult<()> {
        self.batch(vec![
            self.stmt("DELETE FROM backups WHERE id = ?1", &[s(id)])?
        ])
        .await?;
        Ok(())
    }

    async fn prune_access_log(&self, up_to: u64, before_ms: u64, limit: u64) -> ApiResult<u64> {
        let changes = self
            .batch(vec![self.stmt(
                "DELETE FROM access_log WHERE id IN (SELECT id FROM access_log \
                 WHERE id <= ?1 AND ts < ?2 ORDER BY id LIMIT ?3)",
                &[n(up_to), n(before_ms), n(limit)],
            )?])
            .await?;
        Ok(changes.first().copied().unwrap_or(0) as u64)
    }

    async fn page(
        &self,
        table: &str,
        (after, after_key): (u64, &str),
        limit: u64,
        high_water: u64,
    ) -> ApiResult<Page> {
        let table = table_sql(table)?;
        if table == "upload_parts" {
            // WITHOUT ROWID: paged by its primary key, (upload_id, number), which its
            // primary-key index answers in order.
            let rows: Vec<Value> = self
                .all(
                    table,
                    "SELECT * FROM upload_parts WHERE (upload_id, number) > (?1, ?2) \
                     ORDER BY upload_id, number LIMIT ?3",
                    &[s(after_key), n(after), n(limit)],
                )
                .await?;
            let last = last_part_key(&rows)?;
            return Ok(Page {
                rows,
                blobs: Vec::new(),
                last,
            });
        }
        // The access log is backed up to the row that was last when the backup started.
        let bound = if table == "access_log" {
            " AND rowid <= ?3"
        } else {
            " AND ?3 >= 0"
        };
        let page_sql = format!(
            "SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ?1{bound} \
             ORDER BY rowid LIMIT ?2"
        );
        let args = [n(after), n(limit), n(high_water)];
        if table != "files" {
            let rows: Vec<Value> = self.all(table, &page_sql, &args).await?;
            let last = last_rowid(&rows);
            return Ok(Page {
                rows,
                blobs: Vec::new(),
                last,
            });
        }
        // The blobs these files use, in the same batch (one transaction): a file in the backup
        // always has its blob beside it, whatever changed between pages.
        let blobs_sql = "SELECT rowid AS _rowid, * FROM blobs WHERE (tenant, sha256) IN \
             (SELECT tenant, sha256 FROM files WHERE rowid > ?1 AND ?3 >= 0 \
              ORDER BY rowid LIMIT ?2)";
        let results = self
            .db
            .batch(vec![
                self.stmt(&page_sql, &args)?,
                self.stmt(blobs_sql, &args)?,
            ])
            .await?;
        let mut results = results.into_iter();
        let mut next = || -> ApiResult<Vec<Value>> {
            results
                .next()
                .ok_or_else(|| ApiError::new(ErrorKind::Internal, "a batch lost a result"))?
                .results::<Value>()
                .map_err(|e| super::bad_row(table, &e))
        };
        let rows = next()?;
        let blobs = next()?;
        let last = last_rowid(&rows);
        Ok(Page { rows, blobs, last })
    }
}
