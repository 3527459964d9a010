//! The reconciler, part of every scheduled run, bounded per run:
//!
//! 1. deletions of bytes that failed are kept in `pending_deletes` ([`delete_bytes`]) and tried
//!    again, with growing pauses, while nothing claims the bytes again;
//! 2. objects under `t/` in the default bucket (the `BLOBS` binding) and in every bucket reached
//!    through the S3 API (ListObjectsV2, signed by locker-core) that no blob and no pending
//!    reservation claims, older than `LOCKER_ORPHAN_GRACE_S`, are deleted;
//! 3. verified blobs are checked against their objects (HEAD): a missing object or one of
//!    another size is recorded and reported in `GET /v1/stats` (`storage`), never deleted.
//!
//! Each pass goes on where the last run stopped (`reconcile_cursors`). Every deletion is
//! logged as `reconcile_delete`, every problem found as `reconcile_missing`.
//!
//! Object keys are content-addressed, so a key deleted as unclaimed can be claimed again by a
//! new upload of the same bytes a moment later; the claim is checked right before each delete,
//! as the upload flow itself does ([`crate::uploads::remove_unclaimed`]).

use locker_core::api::{Operation, StorageChecks, Transport};
use locker_core::reconcile::{orphan_due, parse_blob_key, retry_at};
use locker_core::s3::parse_list_objects;
use worker::{Fetch, Method, Request, RequestInit};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{AccessLog, Blobs, Buckets, CheckedBlob, PendingDelete, Reconcile};
use crate::store::Store;

/// Failed deletions retried per run.
const RETRY_BATCH: u64 = 50;
/// Var: objects the orphan pass looks at, and blobs the object check checks, per run
/// (default 100, at most 1000: one R2 list page).
const BATCH: (&str, u64) = ("LOCKER_RECONCILE_BATCH", 100);

/// Var: seconds an object nothing claims is left alone (default a day; far longer than an
/// upload URL lives plus the grace for completing it).
const ORPHAN_GRACE_S: (&str, u64) = ("LOCKER_ORPHAN_GRACE_S", 86_400);

const BLOB_CURSOR: &str = "blob_check";
const ORPHAN_CURSOR: &str = "orphans";
/// The orphan pass's cursor in an S3 bucket: `orphans:{bucket id}`, a ListObjectsV2
/// continuation token ('' at the start).
const S3_ORPHAN_CURSOR: &str = "orphans:";
/// Seconds a ListObjectsV2 URL signed for the Worker's own request lives.
const LIST_TTL_S: u64 = 60;

/// Deletes stored bytes; if storage refuses or cannot be reached, the deletion is recorded to
/// be retried by the reconciler, and the caller goes on: the registry no longer claims the
/// bytes, so they go sooner or later.
pub(crate) async fn delete_bytes(
    app: &App,
    bucket_id: &str,
    tenant: &str,
    sha256: &str,
    key: &str,
) {
    let deleted = match Store::open(app, bucket_id).await {
        Ok(store) => store.delete(app, key).await,
        Err(e) => Err(e),
    };
    if let Err(e) = deleted {
        worker::console_error!("delete of {key} failed, queued for retry: {}", e.message);
        let pending = PendingDelete {
            bucket_id: bucket_id.to_owned(),
            key: key.to_owned(),
            tenant: tenant.to_owned(),
            sha256: sha256.to_owned(),
            attempts: 1,
        };
        let queued = app
            .registry()
            .queue_delete(&pending, &e.message, retry_at(app.now_ms, 1))
            .await;
        if let Err(q) = queued {
            // The orphan pass still finds these bytes once their grace is over.
            worker::console_error!("could not queue the delete of {key}: {}", q.message);
        }
    }
}

/// The access-log row of a reconciler action; `path` holds the object key.
fn action(
    operation: Operation,
    tenant: &str,
    bucket_id: &str,
    sha256: &str,
    key: &str,
) -> LogEntry {
    LogEntry {
        operation: Some(operation),
        tenant: Some(tenant.to_owned()),
        bucket_id: Some(bucket_id.to_owned()),
        sha256: Some(sha256.to_owned()),
        path: Some(key.to_owned()),
        ..LogEntry::default()
    }
}

fn var(app: &App, (name, default): (&str, u64)) -> u64 {
    app.var(name, &default.to_string())
        .parse()
        .unwrap_or(default)
}

fn batch(app: &App) -> u64 {
    var(app, BATCH).clamp(1, 1000)
}

async fn log(app: &App, entry: &LogEntry) -> ApiResult<()> {
    app.registry().append(&entry.record(app, None)).await
}

/// One run of the three passes; one pass failing does not stop the others.
pub(crate) async fn run(app: &App) {
    if let Err(e) = retry_deletes(app).await {
        worker::console_error!("reconcile: retries failed: {}", e.message);
    }
    if let Err(e) = orphans(app).await {
        worker::console_error!("reconcile: orphan pass failed: {}", e.message);
    }
    if let Err(e) = s3_orphans(app).await {
        worker::console_error!("reconcile: orphan pass of S3 buckets failed: {}", e.message);
    }
    if let Err(e) = check_blobs(app).await {
        worker::console_error!("reconcile: blob check failed: {}", e.message);
    }
}

async fn retry_deletes(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    for d in registry.due_deletes(RETRY_BATCH).await? {
        if registry
            .blob_claimed(&d.tenant, &d.sha256, Some(&d.bucket_id))
            .await?
        {
            // Claimed again (the same bytes were uploaded anew): they must stay.
            registry.drop_delete(&d.bucket_id, &d.key).await?;
            continue;
        }
        let deleted = match Store::open(app, &d.bucket_id).await {
            Ok(store) => store.delete(app, &d.key).await,
            Err(e) => Err(e),
        };
        match deleted {
            Ok(()) => {
                registry.drop_delete(&d.bucket_id, &d.key).await?;
                let entry = action(
                    Operation::ReconcileDelete,
                    &d.tenant,
                    &d.bucket_id,
                    &d.sha256,
                    &d.key,
                );
                log(app, &entry).await?;
            }
            Err(e) => {
                let attempts = d.attempts + 1;
                let again = PendingDelete { attempts, ..d };
                registry
                    .queue_delete(&again, &e.message, retry_at(app.now_ms, attempts))
                    .await?;
            }
        }
    }
    Ok(())
}

async fn orphans(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    let grace = var(app, ORPHAN_GRACE_S);
    let limit = u32::try_from(batch(app)).unwrap_or(1000);
    let mut list = app.blobs.list().prefix("t/").limit(limit);
    if let Some(cursor) = registry
        .cursor(ORPHAN_CURSOR)
        .await?
        .filter(|c| !c.is_empty())
    {
        list = list.cursor(cursor);
    }
    let page = list.execute().await?;
    let bucket_id = app.bucket_id.as_str();
    for object in page.objects() {
        let key = object.key();
        let Some((tenant, sha)) = parse_blob_key(&key) else {
            continue;
        };
        let (tenant, sha) = (tenant.to_string(), sha.to_string());
        if !orphan_due(object.uploaded().as_millis(), app.now_ms, grace)
            || registry.blob_claimed(&tenant, &sha, None).await?
        {
            continue;
        }
        app.blobs.delete(key.clone()).await?;
        let entry = action(Operation::ReconcileDelete, &tenant, bucket_id, &sha, &key);
        log(app, &entry).await?;
    }
    // At the end of the listing the next run starts over.
    let next = page
        .cursor()
        .filter(|_| page.truncated())
        .unwrap_or_default();
    registry.set_cursor(ORPHAN_CURSOR, &next).await
}

/// The orphan pass in every bucket reached through the S3 API: one ListObjectsV2 page of
/// `LOCKER_RECONCILE_BATCH` objects under `t/` per bucket and run, going on from the bucket's
/// own cursor. A bucket that cannot be listed now (its secrets unset, storage down) is skipped
/// until a later run; its cursor stays.
async fn s3_orphans(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    for row in registry.buckets().await? {
        if row.transport != Transport::S3 || row.id == app.bucket_id.as_str() {
            continue;
        }
        let Ok(store) = Store::from_row(app, &row) else {
            continue;
        };
        if let Err(e) = s3_orphan_page(app, &row.id, &store).await {
            worker::console_error!(
                "reconcile: orphan pass of bucket {} ({}): {}",
                row.id,
                row.name,
                e.message
            );
        }
    }
    Ok(())
}

async fn s3_orphan_page(app: &App, bucket_id: &str, store: &Store) -> ApiResult<()> {
    let Store::S3(bucket, _) = store else {
        return Ok(());
    };
    let registry = app.registry();
    let grace = var(app, ORPHAN_GRACE_S);
    let cursor_name = format!("{S3_ORPHAN_CURSOR}{bucket_id}");
    let cursor = registry.cursor(&cursor_name).await?.unwrap_or_default();
    let limit = usize::try_from(batch(app)).unwrap_or(1000);
    let url = bucket
        .presign_list_objects("t/", Some(cursor.as_str()), limit, app.now_s(), LIST_TTL_S)
        .map_err(|e| ApiError::new(ErrorKind::BucketMisconfigured, e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let request = Request::new_with_init(&url, &init)?;
    let mut response = Fetch::Request(request).send().await.map_err(|e| {
        ApiError::new(
            ErrorKind::StorageUnreachable,
            format!("the storage server could not be reached: {e}"),
        )
    })?;
    let status = response.status_code();
    let xml = response.text().await?;
    if status != 200 {
        return Err(ApiError::new(
            ErrorKind::StorageFailed,
            format!("the storage server answered HTTP {status} to ListObjectsV2"),
        ));
    }
    let page = parse_list_objects(&xml)
        .map_err(|e| ApiError::new(ErrorKind::StorageFailed, e.to_string()))?;
    for object in &page.objects {
        let Some((tenant, sha)) = parse_blob_key(&object.key) else {
            continue;
        };
        let (tenant, sha) = (tenant.to_string(), sha.to_string());
        // The claim is checked right before the delete, as in the default bucket.
        if !orphan_due(object.last_modified_ms, app.now_ms, grace)
            || registry.blob_claimed(&tenant, &sha, None).await?
        {
            continue;
        }
        store.delete(app, &object.key).await?;
        let entry = action(
            Operation::ReconcileDelete,
            &tenant,
            bucket_id,
            &sha,
            &object.key,
        );
        log(app, &entry).await?;
    }
    // At the end of the listing the next run starts over.
    registry
        .set_cursor(&cursor_name, page.next.as_deref().unwrap_or_default())
        .await
}

async fn check_blobs(app: &App) -> ApiResult<()> {
    let registry = app.registry();
    let after = registry
        .cursor(BLOB_CURSOR)
        .await?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit = batch(app);
    let blobs = registry.blobs_after(after, limit).await?;
    for blob in &blobs {
        // A bucket this Worker cannot reach now is checked again on the next round.
        let Ok(store) = Store::open(app, &blob.bucket_id).await else {
            continue;
        };
        let Ok(head) = store.head(app, &blob.key).await else {
            continue;
        };
        let problem = match head {
            None => Some("missing"),
            Some((size, _)) if size != blob.size => Some("wrong_size"),
            Some(_) => None,
        };
        registry.set_blob_problem(blob, problem).await?;
        if let Some(problem) = problem {
            worker::console_error!(
                "reconcile: blob {} of {}: object {problem}",
                blob.sha256,
                blob.tenant
            );
            let entry = action(
                Operation::ReconcileMissing,
                &blob.tenant,
                &blob.bucket_id,
                &blob.sha256,
                &blob.key,
            );
            log(app, &entry).await?;
        }
    }
    let next = match blobs.last() {
        Some(CheckedBlob { rowid, .. }) if blobs.len() as u64 == limit => rowid.to_string(),
        _ => "0".to_owned(),
    };
    registry.set_cursor(BLOB_CURSOR, &next).await
}

/// The reconciler's findings for `GET /v1/stats`.
pub(crate) async fn storage_checks(app: &App) -> ApiResult<StorageChecks> {
    let registry = app.registry();
    let (blobs_missing_object, blobs_wrong_size) = registry.blob_problem_counts().await?;
    Ok(StorageChecks {
        pending_deletes: registry.pending_delete_count().await?,
        blobs_missing_object,
        blobs_wrong_size,
    })
}
