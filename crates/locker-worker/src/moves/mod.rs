//! Moving a tenant's files from one bucket to another without changing any ref
//! (`POST /v1/moves`, `GET /v1/moves/{id}`; the work is part of every scheduled run).
//!
//! Starting a move switches, in the same batch, the tenant's routes that send new uploads to the
//! source over to the target (and, when the source is the default bucket, adds a `*` route to
//! the target where the tenant has none), so nothing new lands in the source. Each scheduled run
//! then takes a bounded number of the tenant's blobs still in the source and, for each: streams
//! the object into the target (create-only, with its SHA-256 for storage to check), verifies
//! size and SHA-256 of what the target holds, switches the blob and its files to the target in
//! one D1 batch, and only then deletes the source object (a failed delete is queued for the
//! reconciler). A blob is therefore always wholly in one place as far as a download can tell:
//! before the batch every row names the source, where the bytes still are; after it every row
//! names the target, where they were verified.
//!
//! A move ends when no blob it can move is left in the source and no reservation of the tenant
//! into the source is open (such a reservation, made before the routes switched, may still
//! commit bytes there; they are moved by a later run). Blobs over one PUT (5 GB, or
//! `LOCKER_MOVE_MAX_BLOB`) stay in the source, listed as `too_large`; a blob whose copy fails
//! `MAX_ATTEMPTS` times stays too, listed as `failed`. Another `POST /v1/moves` later tries them
//! again.
//!
//! Who may move: the deployment's admin key (naming the tenant), or a tenant's admin key for all
//! its namespaces (`*`), for its own tenant only: a move takes every namespace's files, so a
//! key limited to some namespaces may not start or read one.

use locker_core::api::{Move, MoveProblemKind, MoveState, Operation, StartMove};
use locker_core::moves::{copyable, finished, run_goes_on, valid_id, MAX_COPY};
use locker_core::s3::PutSpec;
use locker_core::{Sha256Hex, Tenant};

use crate::app::{random_id, App};
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{AccessLog, Buckets, MoveRow, Moves, MovingBlob};
use crate::store::Store;
use worker::ResponseBody;

/// Var: blobs one scheduled run moves at most, over every running move (default 20).
const BATCH: (&str, u64) = ("LOCKER_MOVE_BATCH", 20);
/// Var: bytes after which a run starts no further copy (default 1 GB; one blob always goes).
const BYTES_PER_RUN: (&str, u64) = ("LOCKER_MOVE_BYTES_PER_RUN", 1_000_000_000);
/// Var: the largest blob copied (default and at most 5 GB, one PUT).
const MAX_BLOB: (&str, u64) = ("LOCKER_MOVE_MAX_BLOB", MAX_COPY);
/// Running moves one run looks at.
const MOVES_PER_RUN: u64 = 10;

fn var(app: &App, (name, default): (&str, u64)) -> u64 {
    app.var(name, &default.to_string())
        .parse()
        .unwrap_or(default)
}

/// The tenant whose files `who` may move or see the moves of; `asked` is the tenant a request
/// names.
fn tenant_for(who: &Principal, asked: Option<&str>) -> ApiResult<Option<Tenant>> {
    if who.is_bootstrap() {
        return Ok(match asked {
            Some(t) => Some(Tenant::parse(t)?),
            None => None,
        });
    }
    who.require(Op::Admin, None)?;
    if !who.scopes.namespaces.iter().any(|n| n == "*") {
        return Err(ApiError::forbidden(
            "a move takes every namespace of the tenant: only an admin key for all namespaces \
             ('*') may start or read one",
        ));
    }
    let own = who.tenant()?;
    if asked.is_some_and(|t| t != own.as_str()) {
        return Err(ApiError::forbidden(
            "a tenant's key moves only its own tenant's files",
        ));
    }
    Ok(Some(own.clone()))
}

/// Whether the bucket `id` may take part in a move: registered (the default bucket always
/// is), and its store usable by this Worker. `Ok(active)`.
async fn usable(app: &App, id: &str) -> ApiResult<bool> {
    if id == app.bucket_id.as_str() {
        return Ok(true);
    }
    let row = app
        .registry()
        .bucket(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no such bucket: {id}")))?;
    Store::from_row(app, &row)?;
    Ok(row.active)
}

/// `POST /v1/moves` (201): starts a move; the scheduled runs do the work.
pub(crate) async fn start(
    app: &App,
    who: &Principal,
    body: StartMove,
    log: &mut LogEntry,
) -> ApiResult<Move> {
    let tenant = tenant_for(who, body.tenant.as_deref())?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::MissingTenant,
            "tenant is required with the deployment's admin key",
        )
    })?;
    log.tenant = Some(tenant.to_string());
    log.bucket_id = Some(body.to_bucket.clone());
    if body.from_bucket == body.to_bucket {
        return Err(ApiError::new(
            ErrorKind::SameBucket,
            "from_bucket and to_bucket are the same bucket",
        ));
    }
    // A deactivated source is what one drains; a deactivated target takes nothing new.
    usable(app, &body.from_bucket).await?;
    if !usable(app, &body.to_bucket).await? {
        return Err(ApiError::new(
            ErrorKind::BucketInactive,
            "to_bucket is deactivated",
        ));
    }
    let id = random_id("mv_")?;
    log.path = Some(id.clone());
    if same_storage(app, &body.from_bucket, &body.to_bucket, &id).await? {
        return Err(ApiError::new(
            ErrorKind::SameBucket,
            "from_bucket and to_bucket are two registrations of the same storage",
        ));
    }
    let row = MoveRow {
        id,
        tenant: tenant.to_string(),
        from_bucket: body.from_bucket,
        to_bucket: body.to_bucket,
        state: MoveState::Running,
        moved: 0,
        moved_bytes: 0,
        routes_switched: 0,
        created_at: app.now_ms,
        updated_at: app.now_ms,
        finished_at: None,
    };
    let default_route = row.from_bucket == app.bucket_id.as_str();
    let Some(switched) = app
        .registry()
        .start_move(&row, default_route, &log.record(app, None))
        .await?
    else {
        return Err(ApiError::new(
            ErrorKind::MoveRunning,
            "another move of this tenant's files is running; wait for it to end",
        ));
    };
    log.written = true;
    answer(
        app,
        MoveRow {
            routes_switched: switched,
            ..row
        },
    )
    .await
}

/// Whether two registrations name one storage (another endpoint form of the same bucket): a
/// probe object written through `to` and seen through `from`. Such a "move" would copy each
/// object onto itself and then delete it as the source, so it is refused before it starts.
async fn same_storage(app: &App, from: &str, to: &str, id: &str) -> ApiResult<bool> {
    let (from, to) = (Store::open(app, from).await?, Store::open(app, to).await?);
    let key = format!("locker-probe/{id}");
    let sha256 = Sha256Hex::digest(id.as_bytes());
    let spec = PutSpec {
        key: &key,
        size: id.len() as u64,
        content_type: "application/octet-stream",
        sha256: &sha256,
    };
    to.put_copy(app, &spec, ResponseBody::Body(id.as_bytes().to_vec()))
        .await?;
    let seen = from.head(app, &key).await;
    let removed = to.delete(app, &key).await;
    if let Err(e) = removed {
        worker::console_error!("move {id}: the probe object {key} stays: {}", e.message);
    }
    Ok(seen?.is_some_and(|(size, _)| size == spec.size))
}

/// `GET /v1/moves/{id}`: a move and its progress; another tenant's is 404.
pub(crate) async fn get(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<Move> {
    let tenant = tenant_for(who, None)?;
    let missing = || ApiError::not_found("no such move");
    if !valid_id(id) {
        return Err(missing());
    }
    let row = app.registry().move_row(id).await?.ok_or_else(missing)?;
    if tenant.is_some_and(|t| t.as_str() != row.tenant) {
        return Err(missing());
    }
    log.tenant = Some(row.tenant.clone());
    log.path = Some(row.id.clone());
    answer(app, row).await
}

async fn answer(app: &App, row: MoveRow) -> ApiResult<Move> {
    let registry = app.registry();
    let left = registry.move_left(&row).await?;
    let problems = registry.move_problems(&row.id).await?;
    Ok(Move {
        id: row.id,
        tenant: row.tenant,
        from_bucket: row.from_bucket,
        to_bucket: row.to_bucket,
        state: row.state,
        moved: row.moved,
        moved_bytes: row.moved_bytes,
        remaining: left.remaining,
        pending_uploads: left.pending_uploads,
        routes_switched: row.routes_switched,
        problems,
        created_at: row.created_at,
        updated_at: row.updated_at,
        finished_at: row.finished_at,
    })
}

/// What a run has done so far, over all moves.
#[derive(Default)]
struct Budget {
    blobs: u64,
    bytes: u64,
}

/// The scheduled part: continues the running moves, oldest first, within one run's budget, and
/// ends those with nothing left. One move failing does not stop the others.
pub(crate) async fn scheduled(app: &App) -> ApiResult<()> {
    let mut budget = Budget::default();
    for row in app.registry().running_moves(MOVES_PER_RUN).await? {
        if let Err(e) = run_move(app, &row, &mut budget).await {
            worker::console_error!("move {}: {}", row.id, e.message);
        }
    }
    Ok(())
}

async fn run_move(app: &App, row: &MoveRow, budget: &mut Budget) -> ApiResult<()> {
    let registry = app.registry();
    let (max_blobs, max_bytes) = (var(app, BATCH).max(1), var(app, BYTES_PER_RUN));
    let goes_on = |b: &Budget| run_goes_on(b.blobs, b.bytes, max_blobs, max_bytes);
    if goes_on(budget) {
        if !usable(app, &row.to_bucket).await? {
            return Err(ApiError::new(
                ErrorKind::BucketInactive,
                "the target bucket is deactivated; the move waits",
            ));
        }
        let from = Store::open(app, &row.from_bucket).await?;
        let to = Store::open(app, &row.to_bucket).await?;
        let limit = var(app, MAX_BLOB);
        let want = max_blobs.saturating_sub(budget.blobs);
        for blob in registry.blobs_to_move(row, want).await? {
            if !goes_on(budget) {
                break;
            }
            budget.blobs += 1;
            if !copyable(blob.size, limit) {
                let detail = format!(
                    "{} bytes, more than one copy carries ({} bytes); it stays in the source",
                    blob.size,
                    limit.min(MAX_COPY)
                );
                registry
                    .move_problem(&row.id, &blob, MoveProblemKind::TooLarge, &detail)
                    .await?;
                continue;
            }
            match move_blob(app, row, (&from, &to), &blob).await {
                Ok(_) => budget.bytes += blob.size,
                Err(e) => {
                    worker::console_error!("move {}: blob {}: {}", row.id, blob.sha256, e.message);
                    registry
                        .move_problem(&row.id, &blob, MoveProblemKind::Failed, &e.message)
                        .await?;
                    let entry = blob_entry(row, &blob);
                    registry.append(&entry.record(app, Some(&e))).await?;
                }
            }
        }
    }
    let left = registry.move_left(row).await?;
    if finished(left.movable, left.pending_uploads) {
        registry.finish_move(&row.id).await?;
        worker::console_log!("move {}: done", row.id);
    }
    Ok(())
}

/// The access-log row of one blob of a move: the target bucket, the move's id as `path`.
fn blob_entry(row: &MoveRow, blob: &MovingBlob) -> LogEntry {
    LogEntry {
        operation: Some(Operation::MoveBlob),
        tenant: Some(row.tenant.clone()),
        bucket_id: Some(row.to_bucket.clone()),
        sha256: Some(blob.sha256.clone()),
        path: Some(row.id.clone()),
        bytes: blob.size,
        ..LogEntry::default()
    }
}

/// Copies one blob, verifies the copy, switches the registry, deletes the source. `false`: the
/// blob left the source meanwhile (released, or moved by another run); the copy is removed
/// unless something claims it in the target.
async fn move_blob(
    app: &App,
    row: &MoveRow,
    (from, to): (&Store, &Store),
    blob: &MovingBlob,
) -> ApiResult<bool> {
    let sha256 = Sha256Hex::parse(&blob.sha256)?;
    let key = blob.key.as_str();
    let spec = PutSpec {
        key,
        size: blob.size,
        content_type: &blob.content_type,
        sha256: &sha256,
    };
    // An object already at the key in the target (a run cut short after its copy, or the
    // tenant's same bytes stored there before) is not written again; it is verified like a copy.
    if to.head(app, key).await?.is_none() {
        let body = from
            .body(app, key)
            .await?
            .ok_or_else(|| ApiError::new(ErrorKind::NotUploaded, "the source object is missing"))?;
        to.put_copy(app, &spec, body).await?;
    }
    if let Err(e) = verify(app, to, blob).await {
        // Wrong bytes at the target are nobody's: the next attempt copies afresh.
        crate::uploads::remove_unclaimed(app, &row.to_bucket, &row.tenant, &blob.sha256, key)
            .await?;
        return Err(e);
    }
    let entry = blob_entry(row, blob);
    let switched = app
        .registry()
        .switch_blob(row, blob, &entry.record(app, None))
        .await?;
    let (bucket, gone) = if switched {
        (&row.from_bucket, "source")
    } else {
        (&row.to_bucket, "copy")
    };
    // The source is deleted only now that no row names it (a download that resolved the blob a
    // moment ago may still read it: a short window, as for any deleted file). A reservation of
    // the same bytes into the source still claims the object, and keeps it.
    crate::uploads::remove_unclaimed(app, bucket, &row.tenant, &blob.sha256, key).await?;
    worker::console_log!("move {}: {} {gone} removed", row.id, blob.sha256);
    Ok(switched)
}

/// The target holds the blob's bytes: its size, and its SHA-256 (R2's checksum, which R2
/// verified on write, or a hash of what the store serves).
async fn verify(app: &App, to: &Store, blob: &MovingBlob) -> ApiResult<()> {
    let (size, checksum) = to.head(app, &blob.key).await?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotUploaded,
            "the copy is not in the target bucket",
        )
    })?;
    if size != blob.size {
        return Err(ApiError::new(
            ErrorKind::StoredSizeMismatch,
            format!("the copy has {size} bytes, not {}", blob.size),
        ));
    }
    let digest = match checksum {
        Some(d) => d,
        None => to.digest(app, &blob.key, size).await?,
    };
    if locker_core::hash::to_hex(&digest) != blob.sha256 {
        return Err(ApiError::new(
            ErrorKind::StoredSha256Mismatch,
            "the copy's SHA-256 is not the blob's",
        ));
    }
    Ok(())
}
