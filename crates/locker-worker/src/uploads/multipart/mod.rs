//! Uploads in parts, on both transports: the reservation's plan, the parts' signed URLs, the
//! data plane of a part (`worker` transport), the reservation's state with its stored parts,
//! and the complete that checks the whole object before committing.
//!
//! Invariants, beside those of [`super`]:
//! - a part is accepted only with the length the plan gives its number and the SHA-256 its URL
//!   was signed for; through the Worker, the bytes are checked before R2 keeps them;
//! - a complete runs alone (a lock in the registry) and no part is taken while it runs;
//! - nothing is committed before the whole stored object has the reserved size and SHA-256
//!   (hashed by the runtime's native digest): the parts' checks are a help, not the proof;
//! - when a multipart reservation ends without a commit (abort, wrong bytes, the sweep), its
//!   storage upload is aborted, so no part stays billed.

mod storage;

use std::collections::{BTreeMap, BTreeSet};

use locker_core::api::{
    Complete, MultipartInfo, MultipartPlan, Operation, PartPut, PartUrl, PartUrls, PartsRequest,
    Reserved, StoredPart, Transport, UploadInfo, UploadState,
};
use locker_core::multipart::{PartPlan, PlanError, MAX_PARTS_PER_REQUEST};
use locker_core::s3::{CompletedPart, PartSpec};
use locker_core::sign::PartClaims;
use locker_core::{validate, Sha256Hex};
use worker::Request;

use super::commit::{commit, discard};
use super::data::{check_stored, require_length, Checked};
use super::finish::{committed_answer, verifying_answer};
use super::{load_upload, own_upload, FileSpec};
use crate::app::{random_id, App};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{NewUpload, PartDecl, PartRow, Parts, UploadRow, Uploads};
use crate::store::Store;

/// A complete (or a scheduled check) older than this is taken to have died (its lock is taken
/// over): far above the time a Worker request or a cron run may run.
pub(super) const COMPLETION_LOCK_MS: u64 = 15 * 60 * 1000;

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        let kind = match e {
            PlanError::TooLarge { .. } => ErrorKind::TooLarge,
            PlanError::WrongSize { .. } => ErrorKind::SizeMismatch,
            PlanError::Empty | PlanError::NoSuchPart { .. } => ErrorKind::InvalidPart,
        };
        Self::new(kind, e.to_string())
    }
}

fn transport(store: &Store) -> Transport {
    match store {
        Store::Binding(_) => Transport::Worker,
        Store::S3(_) => Transport::S3,
    }
}

/// The plan a multipart row was reserved with; `None` for an upload in one request.
fn plan_of(row: &UploadRow) -> ApiResult<Option<(PartPlan, &str)>> {
    let (Some(id), Some(size), Some(count)) = (&row.multipart_id, row.part_size, row.part_count)
    else {
        return Ok(None);
    };
    PartPlan::from_parts(row.size, size, count)
        .map(|p| Some((p, id.as_str())))
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Internal,
                "the registry holds a multipart plan this Worker cannot read",
            )
        })
}

fn multipart_of(row: &UploadRow) -> ApiResult<(PartPlan, &str)> {
    plan_of(row)?.ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotMultipart,
            "this upload is one request, not in parts",
        )
    })
}

/// The refusal for a reservation that takes no more parts.
fn closed(row: &UploadRow) -> Option<ApiError> {
    if row.state != UploadState::Pending {
        return Some(ApiError::new(
            ErrorKind::UploadClosed,
            format!("this upload is {}", row.state.as_str()),
        ));
    }
    row.completing_at.map(|_| {
        ApiError::new(
            ErrorKind::UploadBusy,
            "this upload is being completed; it takes no more parts",
        )
    })
}

/// The multipart reservation: starts the upload in storage, records it, answers the plan.
pub(crate) async fn reserve(
    app: &App,
    who: &Principal,
    spec: &FileSpec,
    ttl: u64,
    (bucket_id, store): (&str, &Store),
    log: &mut LogEntry,
) -> ApiResult<Reserved> {
    let transport = transport(store);
    let plan = PartPlan::new(spec.size, transport)?;
    let key = spec.key();
    let multipart_id = storage::create(app, store, key.as_str(), &spec.content_type).await?;
    let id = random_id("up_")?;
    let expires_at = app.now_s() + ttl;
    log.operation = Some(Operation::Reserve);
    log.bucket_id = Some(bucket_id.to_owned());
    let recorded = app
        .registry()
        .reserve(
            &NewUpload {
                id: &id,
                spec,
                bucket_id,
                key_id: &who.key_id,
                expires_at_ms: expires_at * 1000,
                multipart_id: Some(&multipart_id),
                parts: Some((plan.part_size(), plan.part_count())),
            },
            &log.record(app, None),
        )
        .await;
    if let Err(e) = recorded {
        // Nothing names this storage upload: it must not stay billed.
        if let Err(a) = storage::abort(app, store, key.as_str(), &multipart_id).await {
            worker::console_error!("reserve: abort of an unrecorded upload: {}", a.message);
        }
        return Err(e);
    }
    log.written = true;
    Ok(Reserved::Multipart(MultipartPlan {
        parts_url: format!("{}/v1/uploads/{id}/parts", app.origin),
        upload_id: id,
        transport,
        part_size: plan.part_size(),
        part_count: plan.part_count(),
        max_parts_per_request: u32::try_from(MAX_PARTS_PER_REQUEST).unwrap_or(u32::MAX),
        expires_at,
        locker_ref: spec.locker_ref().to_string(),
    }))
}

/// `POST /v1/uploads/{id}/parts`: declares the parts' digests, answers their signed URLs.
pub(crate) async fn parts(
    app: &App,
    who: &Principal,
    id: &str,
    request: PartsRequest,
    log: &mut LogEntry,
) -> ApiResult<PartUrls> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    who.require_write_path(&spec.namespace, &spec.path)?;
    let (plan, multipart_id) = multipart_of(&row)?;
    // Every part is valid before anything is written.
    if request.parts.is_empty() || request.parts.len() > MAX_PARTS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorKind::InvalidPart,
            format!("ask for 1 to {MAX_PARTS_PER_REQUEST} parts at once"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut declared = Vec::with_capacity(request.parts.len());
    for p in &request.parts {
        let size = plan.part_len(p.number)?;
        if !seen.insert(p.number) {
            return Err(ApiError::new(
                ErrorKind::InvalidPart,
                format!("part {} is asked for twice", p.number),
            ));
        }
        let sha256 = Sha256Hex::parse(&p.sha256)?;
        declared.push((p.number, size, sha256));
    }
    if let Some(e) = closed(&row) {
        return Err(e);
    }
    let expires_at = row.expires_at / 1000;
    if app.now_s() >= expires_at {
        return Err(ApiError::new(
            ErrorKind::Expired,
            "this reservation's URLs have expired; reserve again",
        ));
    }
    let decls: Vec<PartDecl> = declared
        .iter()
        .map(|(number, size, sha)| PartDecl {
            number: *number,
            size: *size,
            sha256: sha.to_string(),
        })
        .collect();
    if !app.registry().declare_parts(id, &decls).await? {
        let now = load_upload(app, id).await?;
        return Err(now
            .as_ref()
            .and_then(closed)
            .unwrap_or_else(|| ApiError::new(ErrorKind::UploadBusy, "this upload changed")));
    }
    let store = Store::open(app, &row.bucket_id).await?;
    let key = spec.key();
    let mut urls = Vec::with_capacity(declared.len());
    for (number, size, sha256) in declared {
        let (url, headers) = match &store {
            Store::Binding(_) => {
                let token = app.signer.sign(&PartClaims {
                    uid: id.to_owned(),
                    n: number,
                    sha256,
                    size,
                    exp: expires_at,
                });
                (
                    format!("{}/v1/data/{id}/parts/{number}?sig={token}", app.origin),
                    BTreeMap::new(),
                )
            }
            Store::S3(b) => {
                let part = PartSpec {
                    key: key.as_str(),
                    upload_id: multipart_id,
                    number: u16::try_from(number).map_err(|_| {
                        ApiError::new(ErrorKind::InvalidPart, "part numbers end at 10,000")
                    })?,
                    size,
                    sha256: &sha256,
                };
                let p = storage::presign_part(app, b, &part, expires_at - app.now_s())?;
                (p.url, p.headers.into_iter().collect())
            }
        };
        urls.push(PartUrl {
            number,
            size,
            method: "PUT".to_owned(),
            url,
            headers,
            expires_at,
        });
    }
    Ok(PartUrls {
        upload_id: id.to_owned(),
        parts: urls,
    })
}

/// `PUT /v1/data/{id}/parts/{number}?sig=`: one part through the Worker into R2, its length
/// checked before and its SHA-256 before the part is recorded (only recorded parts are ever
/// completed; see `storage::put_part_r2`). The signature is the credential.
pub(crate) async fn part_put(
    app: &App,
    req: &Request,
    id: &str,
    number: &str,
    sig: &str,
    log: &mut LogEntry,
) -> ApiResult<PartPut> {
    let row = load_upload(app, id).await?;
    let spec = row.as_ref().map(FileSpec::from_row).transpose()?;
    if let (Some(row), Some(spec)) = (&row, &spec) {
        spec.log_into(log);
        log.bucket_id = Some(row.bucket_id.clone());
    }
    let claims: PartClaims = app.signer.verify(sig, app.now_s())?;
    let forged = || ApiError::forbidden("the signature does not match this request");
    if claims.uid != id || number.parse::<u32>().ok() != Some(claims.n) {
        return Err(forged());
    }
    let Some(row) = row else {
        return Err(ApiError::not_found("no such upload"));
    };
    let (plan, multipart_id) = multipart_of(&row)?;
    if plan.part_len(claims.n)? != claims.size {
        return Err(forged());
    }
    if let Some(e) = closed(&row) {
        return Err(e);
    }
    require_length(req, claims.size, &format!("part {} is", claims.n))?;
    let sha = claims.sha256.to_string();
    let answer = |stored: bool| {
        let (number, size, sha256) = (claims.n, claims.size, sha.clone());
        if stored {
            PartPut::Stored {
                number,
                size,
                sha256,
            }
        } else {
            PartPut::Exists {
                number,
                size,
                sha256,
            }
        }
    };
    let recorded = app.registry().parts(id).await?;
    if recorded
        .iter()
        .any(|p| p.number == claims.n && p.sha256 == sha && p.stored_at.is_some())
    {
        return Ok(answer(false));
    }
    let Store::Binding(bucket) = Store::open(app, &row.bucket_id).await? else {
        return Err(ApiError::new(
            ErrorKind::DirectUpload,
            "this upload goes straight to storage, not through the Worker",
        ));
    };
    let Some(body) = req.inner().body() else {
        return Err(ApiError::new(
            ErrorKind::SizeMismatch,
            "the part has no body",
        ));
    };
    log.operation = Some(Operation::Upload);
    let number = u16::try_from(claims.n)
        .map_err(|_| ApiError::new(ErrorKind::InvalidPart, "part numbers end at 10,000"))?;
    let etag = match storage::put_part_r2(
        &bucket,
        row.key.as_str(),
        multipart_id,
        number,
        body,
        claims.size,
        &claims.sha256,
    )
    .await
    {
        Ok(etag) => etag,
        Err(storage::PartRefused::WrongBytes) => {
            return Err(ApiError::new(
                ErrorKind::Sha256Mismatch,
                "the part's SHA-256 is not the declared one; it is not part of the upload",
            ))
        }
        Err(storage::PartRefused::Failed(e)) => return Err(e),
    };
    if !app
        .registry()
        .part_stored(id, claims.n, &sha, &etag)
        .await?
    {
        // Closed, being completed, or declared anew meanwhile: the part is not part of it.
        let now = load_upload(app, id).await?;
        return Err(now.as_ref().and_then(closed).unwrap_or_else(|| {
            ApiError::new(
                ErrorKind::UploadBusy,
                "this part was declared anew while it was sent; send it again",
            )
        }));
    }
    log.bytes = claims.size;
    Ok(answer(true))
}

/// The parts storage holds for a pending upload, each with the length its number takes and the
/// digest declared for it: through the Worker, those it stored; straight to storage, those
/// ListParts names (with a matching checksum where storage reports one).
async fn stored_parts(
    app: &App,
    row: &UploadRow,
    plan: &PartPlan,
    multipart_id: &str,
) -> ApiResult<Vec<(PartRow, Option<String>)>> {
    let declared = app.registry().parts(&row.id).await?;
    match Store::open(app, &row.bucket_id).await? {
        Store::Binding(_) => Ok(declared
            .into_iter()
            .filter(|p| p.stored_at.is_some() && plan.check_part(p.number, p.size).is_ok())
            .map(|p| {
                let etag = p.etag.clone();
                (p, etag)
            })
            .collect()),
        Store::S3(b) => {
            let listed = storage::list_parts(app, &b, &row.key, multipart_id).await?;
            let by_number: BTreeMap<u32, &PartRow> =
                declared.iter().map(|p| (p.number, p)).collect();
            let mut found = Vec::new();
            for part in listed {
                let Some(decl) = by_number.get(&part.number) else {
                    continue;
                };
                let checksum_ok = part
                    .sha256
                    .as_ref()
                    .is_none_or(|s| s.to_string() == decl.sha256);
                if part.size == decl.size
                    && plan.check_part(part.number, part.size).is_ok()
                    && checksum_ok
                {
                    found.push(((*decl).clone(), part.etag));
                }
            }
            found.sort_by_key(|(p, _)| p.number);
            found.dedup_by_key(|(p, _)| p.number);
            Ok(found)
        }
    }
}

/// `GET /v1/uploads/{id}`: the reservation, and for one in parts the parts storage holds.
pub(crate) async fn info(
    app: &App,
    who: &Principal,
    id: &str,
    log: &mut LogEntry,
) -> ApiResult<UploadInfo> {
    let row = own_upload(app, who, id).await?;
    let spec = FileSpec::from_row(&row)?;
    spec.log_into(log);
    log.bucket_id = Some(row.bucket_id.clone());
    // The same right as completing it: a browser's upload token has `write`, not `read`.
    who.require_write_path(&spec.namespace, &spec.path)?;
    let multipart = match plan_of(&row)? {
        None => None,
        Some((plan, multipart_id)) => {
            let parts = if row.state == UploadState::Pending {
                stored_parts(app, &row, &plan, multipart_id)
                    .await?
                    .into_iter()
                    .map(|(p, _)| StoredPart {
                        number: p.number,
                        size: p.size,
                        sha256: p.sha256,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let transport = transport(&Store::open(app, &row.bucket_id).await?);
            Some(MultipartInfo {
                transport,
                part_size: plan.part_size(),
                part_count: plan.part_count(),
                parts,
            })
        }
    };
    Ok(UploadInfo {
        upload_id: row.id.clone(),
        state: row.state,
        locker_ref: spec.locker_ref().to_string(),
        sha256: spec.sha256.to_string(),
        size: spec.size,
        content_type: spec.content_type.clone(),
        expires_at: row.expires_at / 1000,
        multipart,
    })
}

/// The complete of a pending multipart upload (the caller checked the state and the rights):
/// under the completion lock, every part present with its length, storage's complete, then the
/// whole object checked like any upload, then the commit.
pub(crate) async fn complete(
    app: &App,
    who: &Principal,
    row: &UploadRow,
    spec: &FileSpec,
    log: &mut LogEntry,
) -> ApiResult<Complete> {
    let (plan, multipart_id) = multipart_of(row)?;
    if !app
        .registry()
        .lock_completion(&row.id, app.now_ms.saturating_sub(COMPLETION_LOCK_MS))
        .await?
    {
        return Err(match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => return Ok(committed_answer(spec)),
            Some(r) if r.state == UploadState::Verifying => return Ok(verifying_answer(spec)),
            Some(r) if r.state != UploadState::Pending => ApiError::new(
                ErrorKind::UploadClosed,
                format!("this upload is {}", r.state.as_str()),
            ),
            _ => ApiError::new(
                ErrorKind::UploadBusy,
                "this upload is being completed by another request",
            ),
        });
    }
    let outcome = complete_locked(app, who, row, spec, &plan, multipart_id, log).await;
    if outcome.is_err() {
        // A refusal that ended the upload (wrong bytes) closed it already; any other leaves it
        // pending, so the client can send what is missing and complete again.
        if let Err(e) = app.registry().unlock_completion(&row.id).await {
            worker::console_error!("complete: unlock {}: {}", row.id, e.message);
        }
    }
    outcome
}

async fn complete_locked(
    app: &App,
    who: &Principal,
    row: &UploadRow,
    spec: &FileSpec,
    plan: &PartPlan,
    multipart_id: &str,
    log: &mut LogEntry,
) -> ApiResult<Complete> {
    let parts = stored_parts(app, row, plan, multipart_id).await?;
    let have: BTreeSet<u32> = parts.iter().map(|(p, _)| p.number).collect();
    let missing: Vec<String> = (1..=plan.part_count())
        .filter(|n| !have.contains(n))
        .take(20)
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorKind::PartsMissing,
            format!(
                "storage does not hold every part; missing: {}{}",
                missing.join(", "),
                if missing.len() == 20 { ", ..." } else { "" }
            ),
        ));
    }
    let store = Store::open(app, &row.bucket_id).await?;
    let key = spec.key();
    // The key is the content hash: bytes already there (another upload of the same file made
    // them) are verified as they are, and this upload's parts are dropped instead of written
    // over them.
    let made = if store.head(app, key.as_str()).await?.is_some() {
        drop_parts(app, &store, key.as_str(), multipart_id).await;
        false
    } else {
        match &store {
            Store::Binding(bucket) => {
                let mut list = Vec::with_capacity(parts.len());
                for (p, etag) in &parts {
                    let number = u16::try_from(p.number).map_err(|_| {
                        ApiError::new(ErrorKind::Internal, "a part number beyond 10,000")
                    })?;
                    let etag = etag.clone().ok_or_else(|| {
                        ApiError::new(ErrorKind::Internal, "a stored part without its ETag")
                    })?;
                    list.push((number, etag));
                }
                storage::complete_r2(bucket, key.as_str(), multipart_id, list).await?;
                true
            }
            Store::S3(b) => {
                let mut list = Vec::with_capacity(parts.len());
                for (p, etag) in &parts {
                    list.push(CompletedPart {
                        number: p.number,
                        etag: etag.clone(),
                        sha256: Sha256Hex::parse(&p.sha256)?,
                    });
                }
                match storage::complete_s3(app, b, key.as_str(), multipart_id, &list).await? {
                    storage::Completed::Made => true,
                    storage::Completed::KeyTaken => {
                        drop_parts(app, &store, key.as_str(), multipart_id).await;
                        false
                    }
                }
            }
        }
    };
    let checked = match check_stored(
        app,
        &store,
        spec,
        crate::config::verify_inline_max(&app.env),
    )
    .await
    {
        Ok(checked) => checked,
        Err(e) => {
            if e.kind.is_wrong_bytes() {
                // The bytes at the key are not the reserved ones. Made by this complete, they
                // are this upload's and go with it; found there, they are another pending
                // upload's, whose own complete will refuse and remove them.
                discard(app, row).await?;
                if made {
                    store.delete(app, key.as_str()).await?;
                }
            }
            return Err(e);
        }
    };
    // The magic number is checked now, with the caller's type limits, even when the digest is
    // left to the scheduled check: storage objects are write-once, so the bytes sniffed here
    // are the bytes that check will hash.
    let (_, types) = who.limits(app);
    if let Err(e) = validate::magic_matches(
        &spec.content_type,
        &store.sniff(app, key.as_str(), spec.size).await?,
        &types,
    ) {
        discard(app, row).await?;
        return Err(e.into());
    }
    if checked == Checked::SizeOnly {
        return defer(app, row, spec).await;
    }
    log.bytes = spec.size;
    match commit(app, spec, &row.bucket_id, Some(&row.id), log).await {
        Err(e) if e.kind == ErrorKind::UploadClosed => match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => Ok(committed_answer(spec)),
            _ => Err(e),
        },
        Err(e) => Err(e),
        Ok(()) => {
            if let Err(e) = app.registry().forget_parts(&row.id).await {
                worker::console_error!("complete: forget parts {}: {}", row.id, e.message);
            }
            Ok(committed_answer(spec))
        }
    }
}

/// An object too large to hash within this request: the upload becomes `verifying` (no blob,
/// no file, so no dedup hit and no download) until the scheduled check commits or refuses it.
async fn defer(app: &App, row: &UploadRow, spec: &FileSpec) -> ApiResult<Complete> {
    if !app.registry().defer_verification(&row.id).await? {
        return match load_upload(app, &row.id).await? {
            Some(r) if r.state == UploadState::Committed => Ok(committed_answer(spec)),
            Some(r) if r.state == UploadState::Verifying => Ok(verifying_answer(spec)),
            other => Err(ApiError::new(
                ErrorKind::UploadClosed,
                format!(
                    "this upload is {}",
                    other.map_or("gone", |r| r.state.as_str())
                ),
            )),
        };
    }
    // The parts are one object in storage now; their rows are no longer needed.
    if let Err(e) = app.registry().forget_parts(&row.id).await {
        worker::console_error!("complete: forget parts {}: {}", row.id, e.message);
    }
    Ok(verifying_answer(spec))
}

/// Aborts the storage upload whose parts are not needed (the object exists already). A failure
/// is only logged: the parts are then left to the abort that ends the reservation or to
/// storage's own expiry of abandoned uploads, and the complete goes on.
async fn drop_parts(app: &App, store: &Store, key: &str, multipart_id: &str) {
    if let Err(e) = storage::abort(app, store, key, multipart_id).await {
        worker::console_error!("complete: abort of unneeded parts: {}", e.message);
    }
}

/// After a multipart reservation ended without a commit (aborted, expired, wrong bytes):
/// aborts its storage upload, so storage drops the parts, and forgets their rows. A failure is
/// logged to the console; the parts are then left to storage's own expiry of abandoned uploads.
pub(crate) async fn end_in_storage(app: &App, row: &UploadRow) {
    let Some(multipart_id) = &row.multipart_id else {
        return;
    };
    let aborted = match Store::open(app, &row.bucket_id).await {
        Ok(store) => storage::abort(app, &store, &row.key, multipart_id).await,
        Err(e) => Err(e),
    };
    if let Err(e) = aborted {
        worker::console_error!("multipart abort of {}: {}", row.id, e.message);
    }
    if let Err(e) = app.registry().forget_parts(&row.id).await {
        worker::console_error!("forget parts of {}: {}", row.id, e.message);
    }
}
