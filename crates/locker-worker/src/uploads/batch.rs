//! `POST /v1/uploads:batch`: up to [`BATCH_MAX`] reservations in one request.
//!
//! Each item is answered exactly as `POST /v1/uploads` would answer its body alone: the same
//! validation, scope check, dedup and plan, and one access-log row per item with the single
//! route's operation (`reserve`, `dedup`, `denied`, `failed`). What is shared is the cost: one
//! read finds every item's stored bytes, and every new single-request reservation and every
//! refused item's log row are written in one D1 batch. A dedup or an upload in parts (rare
//! among many small files) still takes the single route's steps, since each one's writes
//! depend on reads of its own (the file it replaces, the multipart upload storage creates).
//!
//! The envelope (`{"uploads": [...]}`, 1 to 100 items) is the only thing that fails as a
//! whole: 400 for a body that is not one, 413 for more than 100 items. If the final D1 batch
//! fails, no reservation of it exists (the answer is a 500), while dedups answered before it
//! stay done, as single requests would.

use std::collections::HashMap;

use locker_core::api::ReservedBatch;
use locker_core::api::{
    BatchRefusal, BatchResult, ErrorDetail, Operation, ReserveRequest, Reserved, BATCH_MAX,
};
use locker_core::multipart;
use serde::Deserialize;

use super::reserve::{dedup_fits, dedup_linked, dedup_log, plan_single, SinglePut};
use super::{validate_request, FileSpec};
use crate::app::App;
use crate::auth::Principal;
use crate::buckets;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{BlobRow, Blobs, Files, LogRecord, NewUpload, Uploads};
use crate::store::Store;

/// The envelope as read: the items stay JSON until each is read alone, so an item that is not
/// a reservation request is refused alone (`invalid_json`), as its single request would be.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    uploads: Vec<serde_json::Value>,
}

/// Where an item stands while the batch is worked through.
enum Step {
    /// Valid, not answered yet.
    Open,
    /// A single-request reservation, to be written in the batch.
    Planned {
        single: SinglePut,
        bucket_id: String,
    },
    Done(ApiResult<Reserved>),
}

struct Item {
    log: LogEntry,
    /// The valid request: its file, its URL's lifetime and its `multipart` wish.
    valid: Option<(FileSpec, u64, Option<bool>)>,
    step: Step,
}

impl Item {
    /// The file of an item still open.
    fn open(&self) -> Option<&FileSpec> {
        match (&self.step, &self.valid) {
            (Step::Open, Some((spec, _, _))) => Some(spec),
            _ => None,
        }
    }
}

/// `POST /v1/uploads:batch`.
pub(crate) async fn reserve_batch(
    app: &App,
    who: &Principal,
    body: BatchBody,
    log: &mut LogEntry,
) -> ApiResult<ReservedBatch> {
    let count = body.uploads.len();
    if count == 0 {
        return Err(ApiError::new(
            ErrorKind::InvalidJson,
            format!("uploads is empty: send 1 to {BATCH_MAX} reservations"),
        ));
    }
    if count > BATCH_MAX {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("{count} reservations in one batch; at most {BATCH_MAX}"),
        ));
    }
    let mut items: Vec<Item> = body
        .uploads
        .into_iter()
        .map(|value| open_item(app, who, log, value))
        .collect();

    // Every item's stored bytes in one read; valid items are all of the caller's tenant.
    let mut digests: Vec<String> = items
        .iter()
        .filter_map(|i| i.open().map(|spec| spec.sha256.to_string()))
        .collect();
    digests.sort_unstable();
    digests.dedup();
    let blobs = match (digests.is_empty(), who.tenant()) {
        (false, Ok(tenant)) => {
            app.registry()
                .verified_blobs(tenant.as_str(), &digests)
                .await?
        }
        _ => HashMap::new(),
    };

    dedup(app, who, &mut items, &blobs).await?;

    // New bytes: the target bucket once per namespace, then each item's plan.
    let threshold = crate::config::multipart_threshold(&app.env);
    let mut targets: HashMap<String, (String, Store)> = HashMap::new();
    for item in &mut items {
        let (Step::Open, Some((spec, ttl, in_parts))) = (&item.step, &item.valid) else {
            continue;
        };
        let namespace = spec.namespace.to_string();
        if !targets.contains_key(&namespace) {
            match buckets::target(app, &spec.tenant, &spec.namespace).await {
                Ok(target) => {
                    targets.insert(namespace.clone(), target);
                }
                Err(e) => {
                    item.step = Step::Done(Err(e));
                    continue;
                }
            }
        }
        let Some((bucket_id, store)) = targets.get(&namespace) else {
            continue;
        };
        item.log.bucket_id = Some(bucket_id.clone());
        let threshold = multipart::planned_threshold(threshold, store.one_request_free());
        item.step = if multipart::is_multipart(spec.size, *in_parts, threshold) {
            let answer =
                super::multipart::reserve(app, who, spec, *ttl, (bucket_id, store), &mut item.log)
                    .await;
            Step::Done(answer)
        } else {
            match plan_single(app, who, spec, *ttl, store) {
                Ok(single) => Step::Planned {
                    single,
                    bucket_id: bucket_id.clone(),
                },
                Err(e) => Step::Done(Err(e)),
            }
        };
    }
    write(app, &mut items).await?;
    // Every item logged itself; the batch request has no row of its own.
    log.written = true;
    Ok(ReservedBatch {
        results: items.into_iter().map(answer).collect(),
    })
}

/// The items whose bytes are stored: checked side by side (each bucket's store opened once),
/// then every fitting one's file row and log row in one D1 batch, each under its own
/// condition, as the single route writes them; a replaced blob is released as there. An item
/// whose blob went meanwhile is reserved like new bytes.
async fn dedup(
    app: &App,
    who: &Principal,
    items: &mut [Item],
    blobs: &HashMap<String, BlobRow>,
) -> ApiResult<()> {
    fn found<'i, 'b>(
        item: &'i Item,
        blobs: &'b HashMap<String, BlobRow>,
    ) -> Option<(&'i FileSpec, &'b BlobRow)> {
        item.open()
            .and_then(|spec| blobs.get(&spec.sha256.to_string()).map(|b| (spec, b)))
    }
    let mut stores: HashMap<String, ApiResult<Store>> = HashMap::new();
    for item in items.iter() {
        if let Some((_, blob)) = found(item, blobs) {
            if !stores.contains_key(&blob.bucket_id) {
                let store = Store::open(app, &blob.bucket_id).await;
                stores.insert(blob.bucket_id.clone(), store);
            }
        }
    }
    let fits = futures_util::future::join_all(items.iter().map(|item| {
        let stores = &stores;
        async move {
            let (spec, blob) = found(item, blobs)?;
            let fit = match stores.get(&blob.bucket_id) {
                Some(Ok(store)) => dedup_fits(app, who, spec, blob, store).await,
                Some(Err(e)) => Err(e.clone()),
                None => Err(ApiError::new(
                    ErrorKind::Internal,
                    "this dedup's bucket was not opened",
                )),
            };
            Some((blob, fit))
        }
    }))
    .await;
    let mut linking = Vec::new();
    for (item, fit) in items.iter_mut().zip(fits) {
        let (Some((blob, fit)), Some((spec, _, _))) = (fit, &item.valid) else {
            continue;
        };
        match fit {
            Ok(()) => {
                dedup_log(spec, blob, &mut item.log);
                linking.push(item);
            }
            Err(e) => item.step = Step::Done(Err(e)),
        }
    }
    let records: Vec<LogRecord> = linking.iter().map(|i| i.log.record(app, None)).collect();
    let links: Vec<(&FileSpec, &LogRecord)> = linking
        .iter()
        .zip(&records)
        .filter_map(|(item, record)| item.valid.as_ref().map(|(spec, _, _)| (spec, record)))
        .collect();
    let linked = app.registry().link_files(&links).await?;
    drop(links);
    futures_util::future::join_all(linking.into_iter().zip(linked).map(
        |(item, linked)| async move {
            let Some((spec, _, _)) = &item.valid else {
                return;
            };
            match dedup_linked(app, spec, linked, &mut item.log).await {
                Ok(Some(d)) => item.step = Step::Done(Ok(Reserved::Deduplicated(d))),
                // Released meanwhile: reserved like new bytes.
                Ok(None) => item.log.operation = Some(Operation::Reserve),
                Err(e) => item.step = Step::Done(Err(e)),
            }
        },
    ))
    .await;
    Ok(())
}

/// One D1 batch: each planned reservation with its log row, and the log rows of refused items
/// (an item whose own steps logged it already, a failed dedup say, is not logged twice).
async fn write(app: &App, items: &mut [Item]) -> ApiResult<()> {
    let mut uploads: Vec<(NewUpload<'_>, LogRecord)> = Vec::new();
    let mut refused: Vec<LogRecord> = Vec::new();
    for item in items.iter() {
        match (&item.step, &item.valid) {
            (Step::Planned { single, bucket_id }, Some((spec, _, _))) => {
                uploads.push((single.row(spec, bucket_id), item.log.record(app, None)));
            }
            (Step::Done(Err(e)), _) if !item.log.written => {
                refused.push(item.log.record(app, Some(e)));
            }
            _ => {}
        }
    }
    app.registry().reserve_many(&uploads, &refused).await?;
    for item in items.iter_mut() {
        item.log.written = true;
    }
    Ok(())
}

fn answer(item: Item) -> BatchResult {
    match item.step {
        Step::Planned { single, .. } => BatchResult::Reserved(Reserved::Upload(single.plan)),
        Step::Done(Ok(reserved)) => BatchResult::Reserved(reserved),
        Step::Done(Err(e)) => refusal(e.kind, e.message),
        // Every open item was planned or answered above; none is left open.
        Step::Open => refusal(
            ErrorKind::Internal,
            "this reservation was not handled".into(),
        ),
    }
}

fn refusal(kind: ErrorKind, message: String) -> BatchResult {
    BatchResult::Refused(BatchRefusal {
        http_status: kind.status(),
        error: ErrorDetail {
            code: kind.code().to_owned(),
            message,
        },
    })
}

/// Reads one item and validates it as the single route does, naming it in its log entry.
fn open_item(app: &App, who: &Principal, batch: &LogEntry, value: serde_json::Value) -> Item {
    let mut log = LogEntry {
        operation: Some(Operation::Reserve),
        tenant: batch.tenant.clone(),
        key_id: batch.key_id.clone(),
        ..LogEntry::default()
    };
    let valid = match serde_json::from_value::<ReserveRequest>(value) {
        Err(e) => Err(ApiError::new(
            ErrorKind::InvalidJson,
            format!("reservation: {e}"),
        )),
        Ok(body) => {
            log.namespace = Some(body.namespace.clone());
            log.path = Some(body.path.clone());
            validate_request(app, who, &body).map(|(spec, ttl)| {
                spec.log_into(&mut log);
                (spec, ttl, body.multipart)
            })
        }
    };
    match valid {
        Ok(valid) => Item {
            log,
            valid: Some(valid),
            step: Step::Open,
        },
        Err(e) => Item {
            log,
            valid: None,
            step: Step::Done(Err(e)),
        },
    }
}
