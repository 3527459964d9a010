//! Registry backups (the format is `locker_core::backup`): written page by page into the default
//! bucket under `backups/{id}/`, across as many runs as they need, listed as complete only once
//! the manifest is written; retention keeps the newest per day and per week; the admin API
//! lists them, runs one, and hands out a short-lived download URL.
//!
//! Consistency: D1 has no read transaction spanning requests, and its export API is not
//! reachable from a binding. So a backup reads each table in rowid-ordered pages (one D1 query
//! each, a few per run) and relies on how the registry changes instead of on a snapshot:
//! tables are read so that what a row names is read after it (`buckets`, never deleted, last),
//! each page of `files` carries the blobs it uses from the same transaction, and the access log
//! is cut at its highest id when the backup started. A restore therefore never finds a file
//! without its blob or a row without its bucket; rows changed while the backup ran are in it as
//! they were when their page was read.

use locker_core::api::Operation;
use locker_core::backup::{self, BackupClaims, Manifest, Part, MANIFEST, TABLES};
use locker_core::Sha256Hex;
use serde_json::{json, Value};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Response;

use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{AccessLog, BackupRow, Backups, Cursor};
use crate::store::r2_failed;

/// How long a backup's download URL lives.
const DOWNLOAD_TTL_S: u64 = 600;

/// Vars (wrangler.toml) that shape backups, with their defaults.
pub(crate) mod vars {
    /// Rows per page (one D1 query, one part object).
    pub(crate) const PAGE_ROWS: (&str, u64) = ("LOCKER_BACKUP_PAGE_ROWS", 1000);
    /// Pages one run writes at most; the next run continues.
    pub(crate) const PAGES_PER_RUN: (&str, u64) = ("LOCKER_BACKUP_PAGES_PER_RUN", 20);
    /// Newest backups of this many days are kept.
    pub(crate) const KEEP_DAILY: (&str, u64) = ("LOCKER_BACKUP_KEEP_DAILY", 7);
    /// Newest backups of this many weeks are kept.
    pub(crate) const KEEP_WEEKLY: (&str, u64) = ("LOCKER_BACKUP_KEEP_WEEKLY", 4);
    /// Access-log rows older than this many seconds leave D1 once a backup holds them
    /// (default 90 days).
    pub(crate) const LOG_RETENTION_S: (&str, u64) = ("LOCKER_LOG_RETENTION_S", 90 * 86_400);
    /// A running backup that wrote no page for this many seconds is abandoned (its parts
    /// deleted) and the next backup starts afresh (default 6 hours).
    pub(crate) const STUCK_S: (&str, u64) = ("LOCKER_BACKUP_STUCK_S", 6 * 3600);
    /// The cron trigger (wrangler.toml `[triggers]`) that starts a backup.
    pub(crate) const CRON: &str = "LOCKER_BACKUP_CRON";
    pub(crate) const CRON_DEFAULT: &str = "17 3 * * *";
}

fn setting(app: &App, (name, default): (&str, u64)) -> u64 {
    app.var(name, &default.to_string())
        .parse()
        .unwrap_or(default)
}

/// Whether `cron` is the trigger that starts backups.
pub(crate) fn is_backup_cron(app: &App, cron: &str) -> bool {
    app.var(vars::CRON, vars::CRON_DEFAULT) == cron
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::Internal, format!("{what}: {e}"))
}

fn js(what: &'static str) -> impl Fn(wasm_bindgen::JsValue) -> ApiError {
    move |e| internal(what, format!("{e:?}"))
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The runtime's `CompressionStream` (web-sys has it only behind its unstable-API flag).
    #[wasm_bindgen(extends = web_sys::TransformStream)]
    type CompressionStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(format: &str) -> Result<CompressionStream, wasm_bindgen::JsValue>;
}

/// Gzip through the runtime's `CompressionStream`.
async fn gzip(bytes: &mut [u8]) -> ApiResult<Vec<u8>> {
    let input = web_sys::Response::new_with_opt_u8_array(Some(bytes)).map_err(js("gzip input"))?;
    let body = input
        .body()
        .ok_or_else(|| internal("gzip", "no body stream"))?;
    let gz = CompressionStream::new("gzip").map_err(js("CompressionStream"))?;
    let pair = web_sys::ReadableWritablePair::new(&gz.readable(), &gz.writable());
    let out = web_sys::Response::new_with_opt_readable_stream(Some(&body.pipe_through(&pair)))
        .map_err(js("gzip output"))?;
    let buffer = JsFuture::from(out.array_buffer().map_err(js("gzip read"))?)
        .await
        .map_err(js("gzip read"))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Writes one part (rows as JSON lines, gzip) and describes it. Storage checks the SHA-256 it is
/// given, so a part in the bucket is exactly what the manifest says.
async fn write_part(
    app: &App,
    id: &str,
    name: String,
    table: &str,
    rows: &[Value],
) -> ApiResult<Part> {
    let mut lines = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut lines, row).map_err(|e| internal("a row", e))?;
        lines.push(b'\n');
    }
    let gz = gzip(&mut lines).await?;
    let digest = Sha256Hex::digest(&gz);
    let bytes = gz.len() as u64;
    app.blobs
        .put(backup::object_key(id, &name), gz)
        .sha256(digest.as_bytes().to_vec())
        .execute()
        .await
        .map_err(r2_failed("write a backup part"))?;
    Ok(Part {
        name,
        table: table.to_owned(),
        rows: rows.len() as u64,
        bytes,
        sha256: digest.to_string(),
    })
}

fn parse_manifest(row: &BackupRow) -> ApiResult<Manifest> {
    serde_json::from_str(&row.manifest).map_err(|e| internal("a backup's manifest", e))
}

fn manifest_json(m: &Manifest) -> ApiResult<String> {
    serde_json::to_string(m).map_err(|e| internal("a manifest", e))
}

/// What one run did.
pub(crate) struct Ran {
    pub id: String,
    pub started: bool,
    pub complete: bool,
    /// Compressed bytes written by this run.
    pub bytes: u64,
}

/// Objects of an abandoned backup deleted per run at most (one R2 list page, one bulk delete).
const ABANDON_BATCH: u32 = 1000;

/// The running backup, unless it is stuck (no page written for `LOCKER_BACKUP_STUCK_S`): a
/// stuck one is marked `abandoned` here (logged), so it blocks no later backup; its objects
/// go in [`clear_abandoned`].
async fn running_unless_stuck(app: &App) -> ApiResult<Option<BackupRow>> {
    let registry = app.registry();
    let Some(row) = registry.running_backup().await? else {
        return Ok(None);
    };
    let timeout = setting(app, vars::STUCK_S);
    if !backup::stuck(row.last_progress(), app.now_ms, timeout) {
        return Ok(Some(row));
    }
    if registry
        .abandon_backup(&row.id, row.last_progress())
        .await?
    {
        worker::console_error!(
            "backup {}: no progress for more than {timeout} s, abandoned; its parts are deleted",
            row.id
        );
        let log = LogEntry {
            operation: Some(Operation::Backup),
            path: Some(row.id.clone()),
            ..LogEntry::default()
        };
        let error = ApiError::new(
            ErrorKind::Internal,
            format!("abandoned: no progress for more than {timeout} s"),
        );
        registry.append(&log.record(app, Some(&error))).await?;
    }
    // Abandoned now; or a run wrote a page in the same instant and it runs on.
    registry.running_backup().await
}

/// Deletes the objects of abandoned backups (everything under `backups/{id}/`: the parts its
/// manifest lists and any a dying run wrote unlisted), a bounded number a run; the row goes
/// once nothing is left, so an interrupted deletion goes on in the next run.
async fn clear_abandoned(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    for row in registry.abandoned_backups().await?.into_iter().take(2) {
        let page = app
            .blobs
            .list()
            .prefix(backup::object_key(&row.id, ""))
            .limit(ABANDON_BATCH)
            .execute()
            .await?;
        let keys: Vec<String> = page.objects().iter().map(worker::Object::key).collect();
        if !keys.is_empty() {
            app.blobs.delete_multiple(keys).await?;
        }
        if !page.truncated() {
            registry.forget_backup(&row.id).await?;
        }
    }
    Ok(())
}

/// One run: gives up a stuck backup, continues the backup being written, or (with `start`)
/// begins one; writes at most `LOCKER_BACKUP_PAGES_PER_RUN` pages; writes the manifest when
/// every table is read; then applies retention. `None`: nothing to continue and `start` was
/// not asked.
pub(crate) async fn run(app: &App, start: bool) -> ApiResult<Option<Ran>> {
    let registry = app.registry();
    let mut started = false;
    let running = running_unless_stuck(app).await?;
    if let Err(e) = clear_abandoned(app).await {
        worker::console_error!("backup: deleting an abandoned backup failed: {}", e.message);
    }
    let row = match running {
        Some(row) => row,
        None if start => {
            let id = backup::backup_id(app.now_ms);
            let manifest = Manifest::new(
                &id,
                &registry.schema_version().await?,
                app.now_ms,
                registry.access_log_high_water().await?,
            );
            started = registry
                .start_backup(&id, &manifest_json(&manifest)?)
                .await?;
            // Lost a race with another start: continue that one.
            let row = if started {
                registry.backup(&id).await?
            } else {
                registry.running_backup().await?
            };
            row.ok_or_else(|| {
                ApiError::new(ErrorKind::Changed, "a backup started and ended meanwhile")
            })?
        }
        None => return Ok(None),
    };
    let mut manifest = parse_manifest(&row)?;
    let page_rows = setting(app, vars::PAGE_ROWS).max(1);
    let budget = setting(app, vars::PAGES_PER_RUN).max(1);
    let mut cursor = row.cursor();
    let mut written = 0;
    let mut pages = 0;
    while pages < budget {
        let Some(table) = usize::try_from(cursor.step)
            .ok()
            .and_then(|i| TABLES.get(i))
        else {
            break;
        };
        let page = registry
            .page(
                table,
                (cursor.after, &cursor.after_key),
                page_rows,
                manifest.access_log_high_water,
            )
            .await?;
        let expected = cursor.clone();
        match page.last {
            None => cursor = cursor.next_table(),
            Some((after, after_key)) => {
                let name = manifest.next_part_name(table);
                let part = write_part(app, &row.id, name, table, &page.rows).await?;
                written += part.bytes;
                manifest.add_part(part, page.rows.len() as u64);
                if !page.blobs.is_empty() {
                    // The blobs of these files: replayed before any file, counted with `blobs`
                    // already (they are in its pages too, unless created since).
                    let name = manifest.next_part_name("blobs");
                    let part = write_part(app, &row.id, name, "blobs", &page.blobs).await?;
                    written += part.bytes;
                    manifest.add_part(part, 0);
                }
                // A short page is the table's last: no need to ask for an empty one.
                cursor = if (page.rows.len() as u64) < page_rows {
                    cursor.next_table()
                } else {
                    Cursor {
                        step: cursor.step,
                        after,
                        after_key,
                    }
                };
                pages += 1;
            }
        }
        let done = cursor.step as usize >= TABLES.len();
        if done {
            manifest.finished_at = Some(app.now_ms);
            let json = manifest_json(&manifest)?;
            written += json.len() as u64;
            app.blobs
                .put(
                    backup::object_key(&row.id, MANIFEST),
                    json.clone().into_bytes(),
                )
                .execute()
                .await?;
        }
        // Progress after every page: a run cut short loses at most one page, which the next
        // run writes again under the same name.
        let json = manifest_json(&manifest)?;
        if !registry
            .save_backup(&row.id, &expected, &cursor, &json, done)
            .await?
        {
            return Err(ApiError::new(
                ErrorKind::Changed,
                "another run continued this backup at the same time",
            ));
        }
        if done {
            retention(app).await?;
            return Ok(Some(Ran {
                id: row.id,
                started,
                complete: true,
                bytes: written,
            }));
        }
    }
    Ok(Some(Ran {
        id: row.id,
        started,
        complete: false,
        bytes: written,
    }))
}

/// Deletes the complete backups retention does not keep: the manifest first (so a half-deleted
/// backup is never taken for a complete one), then the parts, then the row.
async fn retention(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    let rows = registry.complete_backups().await?;
    let listed: Vec<(String, u64)> = rows.iter().map(|r| (r.id.clone(), r.started_at)).collect();
    let gone = backup::to_delete(
        &listed,
        u32::try_from(setting(app, vars::KEEP_DAILY)).unwrap_or(u32::MAX),
        u32::try_from(setting(app, vars::KEEP_WEEKLY)).unwrap_or(u32::MAX),
    );
    for row in rows.iter().filter(|r| gone.contains(&r.id)) {
        let manifest = parse_manifest(row)?;
        app.blobs
            .delete(backup::object_key(&row.id, MANIFEST))
            .await?;
        for part in &manifest.parts {
            app.blobs
                .delete(backup::object_key(&row.id, &part.name))
                .await?;
        }
        registry.forget_backup(&row.id).await?;
    }
    Ok(())
}

/// Access-log rows deleted per scheduled run at most (one D1 statement).
const PRUNE_BATCH: u64 = 5000;

/// Access-log retention: rows older than `LOCKER_LOG_RETENTION_S` leave D1, but only rows the
/// newest complete backup holds (ids up to its high-water mark), so no row is lost that is not
/// in a backup. Bounded per run; the next run goes on.
async fn prune_access_log(app: &App) -> ApiResult<u64> {
    let registry = app.registry();
    let Some(newest) = registry.complete_backups().await?.into_iter().next() else {
        return Ok(0);
    };
    let high_water = parse_manifest(&newest)?.access_log_high_water;
    let age_ms = setting(app, vars::LOG_RETENTION_S).saturating_mul(1000);
    registry
        .prune_access_log(high_water, app.now_ms.saturating_sub(age_ms), PRUNE_BATCH)
        .await
}

/// The scheduled part: the backup cron starts a backup (or continues one); every other run
/// continues one that is unfinished; then access-log retention. One access-log row for each
/// run that did something.
pub(crate) async fn scheduled(app: &App, cron: &str) -> ApiResult<()> {
    let start = is_backup_cron(app, cron);
    let ran = run(app, start).await?;
    match prune_access_log(app).await {
        Ok(0) => {}
        Ok(n) => worker::console_log!("access log: {n} row(s) older than retention removed"),
        Err(e) => worker::console_error!("access-log retention failed: {}", e.message),
    }
    let Some(ran) = ran else {
        return Ok(());
    };
    worker::console_log!(
        "backup {}: {} bytes written{}",
        ran.id,
        ran.bytes,
        if ran.complete { ", complete" } else { "" }
    );
    let log = LogEntry {
        operation: Some(Operation::Backup),
        path: Some(ran.id),
        bytes: ran.bytes,
        ..LogEntry::default()
    };
    app.registry().append(&log.record(app, None)).await
}

fn require_bootstrap(who: &Principal) -> ApiResult<()> {
    if who.is_bootstrap() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the deployment's admin key manages backups",
        ))
    }
}

/// A backup as the API shows it.
fn summary(row: &BackupRow) -> ApiResult<Value> {
    let m = parse_manifest(row)?;
    Ok(json!({
        "id": row.id,
        "state": row.state,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "schema_version": m.schema_version,
        "bytes": m.bytes,
        "parts": m.parts.len(),
        "rows": m.rows,
        // Storage took every part only with its SHA-256 (an R2 checksum on write);
        // `GET /v1/backups/{id}` checks them again against what is stored now.
        "checksums": if row.state == "complete" { "verified_on_write" } else { "incomplete" },
    }))
}

/// `GET /v1/backups`: the backup being written, if any, and the complete ones, newest first.
pub(crate) async fn list(app: &App, who: &Principal) -> ApiResult<Value> {
    require_bootstrap(who)?;
    let registry = app.registry();
    let mut backups = Vec::new();
    if let Some(row) = registry.running_backup().await? {
        backups.push(summary(&row)?);
    }
    for row in registry.complete_backups().await? {
        backups.push(summary(&row)?);
    }
    Ok(json!({ "backups": backups }))
}

/// `POST /v1/backups`: runs a backup now (201), or continues the one being written (200);
/// either way at most one run's pages, so a large registry takes several calls (or the
/// scheduled runs finish it).
pub(crate) async fn start(
    app: &App,
    who: &Principal,
    log: &mut LogEntry,
) -> ApiResult<(u16, Value)> {
    require_bootstrap(who)?;
    let ran = run(app, true)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "a backup run started nothing"))?;
    log.path = Some(ran.id.clone());
    log.bytes = ran.bytes;
    let row = app
        .registry()
        .backup(&ran.id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::Changed, "the backup was removed meanwhile"))?;
    Ok((if ran.started { 201 } else { 200 }, summary(&row)?))
}

/// `GET /v1/backups/{id}`: the manifest, the state of every part in storage now, and a
/// short-lived URL for the manifest and each part (`&part=NAME`).
pub(crate) async fn get(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<Value> {
    require_bootstrap(who)?;
    log.path = Some(id.to_owned());
    let row = backup_row(app, id).await?;
    let manifest = parse_manifest(&row)?;
    let mut parts = Vec::new();
    let mut status = "ok";
    for part in &manifest.parts {
        let stored = app.blobs.head(backup::object_key(id, &part.name)).await?;
        let state = match stored {
            None => "missing",
            Some(o) => {
                let sha = o.checksum().sha256.map(|d| locker_core::hash::to_hex(&d));
                if o.size() == part.bytes && sha.as_deref() == Some(part.sha256.as_str()) {
                    "ok"
                } else {
                    "mismatch"
                }
            }
        };
        if state != "ok" {
            status = "damaged";
        }
        parts.push(
            json!({ "name": part.name, "table": part.table, "rows": part.rows,
                           "bytes": part.bytes, "sha256": part.sha256, "stored": state }),
        );
    }
    let exp = app.now_s() + DOWNLOAD_TTL_S;
    let sig = app.signer.sign(&BackupClaims {
        id: id.to_owned(),
        exp,
    });
    let mut body = summary(&row)?;
    if row.state != "complete" {
        status = "incomplete";
    }
    body["checksums"] = json!(status);
    body["manifest"] = json!(manifest);
    body["part_status"] = json!(parts);
    body["url"] = json!(format!("{}/v1/backups/{id}/download?sig={sig}", app.origin));
    body["url_expires_at"] = json!(exp);
    Ok(body)
}

async fn backup_row(app: &App, id: &str) -> ApiResult<BackupRow> {
    if !backup::valid_id(id) {
        return Err(ApiError::not_found("no such backup"));
    }
    app.registry()
        .backup(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such backup"))
}

/// `GET /v1/backups/{id}/download?sig=&part=`: the signature is the credential; `part` names
/// the manifest (the default) or one of the parts the manifest lists.
pub(crate) async fn download(
    app: &App,
    id: &str,
    sig: &str,
    query: &[(String, String)],
    log: &mut LogEntry,
) -> ApiResult<Response> {
    let claims: BackupClaims = app.signer.verify(sig, app.now_s())?;
    if claims.id != id {
        return Err(ApiError::new(
            ErrorKind::BadSignature,
            "this URL is for another backup",
        ));
    }
    log.path = Some(id.to_owned());
    let part = query
        .iter()
        .find(|(k, _)| k == "part")
        .map_or(MANIFEST, |(_, v)| v.as_str());
    let row = backup_row(app, id).await?;
    let manifest = parse_manifest(&row)?;
    let listed = part == MANIFEST && row.state == "complete"
        || manifest.parts.iter().any(|p| p.name == part);
    if !backup::valid_part_name(part) || !listed {
        return Err(ApiError::not_found("no such part in this backup"));
    }
    let object = app
        .blobs
        .get(backup::object_key(id, part))
        .execute()
        .await
        .map_err(r2_failed("read a backup part"))?
        .ok_or_else(|| ApiError::not_found("this part is missing from storage"))?;
    log.bytes = object.size();
    let body = object
        .body()
        .ok_or_else(|| ApiError::not_found("this part is missing from storage"))?
        .response_body()
        .map_err(r2_failed("read a backup part"))?;
    let mut response = Response::from_body(body)?;
    let headers = response.headers_mut();
    let content_type = if part == MANIFEST {
        "application/json"
    } else {
        "application/gzip"
    };
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(response)
}
