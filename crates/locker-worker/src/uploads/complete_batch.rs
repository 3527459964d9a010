//! `POST /v1/uploads:complete`: up to [`BATCH_MAX`] completes in one request.
//!
//! Each id is answered exactly as `POST /v1/uploads/{id}/complete` would answer it alone: the
//! same tenant check (another tenant's id is 404, like an unknown one), scope check, state
//! answers, storage checks with their discards, and one access-log row per id with the single
//! route's operation (`complete`, `denied`, `failed`). An id listed twice is completed once, so
//! logged once, and answered at each place it is listed. What is shared is the cost: one D1
//! read finds every reservation, each bucket's store is opened once, the storage checks run
//! side by side, and every verified upload's commit (each still closing its own reservation
//! first, and writing nothing else unless that worked) goes out with the other ids' log rows
//! in one D1 batch. An upload in parts takes the single route's own steps, side by side with
//! the checks.
//!
//! The envelope (`{"upload_ids": [...]}`, 1 to 100 ids) is the only thing that fails as a
//! whole: 400 for a body that is not one, 413 for more than 100 ids. If the final D1 batch
//! fails, none of its commits happened (the answer is a 500), while discards of wrong bytes
//! and uploads in parts completed before it stay done, as single requests would.

use std::collections::{HashMap, HashSet};

use locker_core::api::{
    BatchRefusal, Complete, CompleteBatch, CompleteResult, CompletedBatch, ErrorDetail, Operation,
    BATCH_MAX,
};
use locker_core::Tenant;

use super::commit::settle;
use super::finish::{check_pending, closed_meanwhile, committed_answer, start};
use super::FileSpec;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{CommitItem, UploadRow, Uploads};
use crate::store::Store;

/// Where an id stands while the batch is worked through.
enum Step {
    /// Pending, in one request: its stored bytes to check.
    Check,
    /// Pending, in parts: the single route's multipart complete to run.
    Multipart,
    /// Its bytes verified: to commit in the batch.
    Commit,
    Done(ApiResult<Complete>),
}

struct Item {
    id: String,
    log: LogEntry,
    /// The caller's reservation and its file, once found.
    found: Option<(UploadRow, FileSpec)>,
    step: Step,
}

/// `POST /v1/uploads:complete`.
pub(crate) async fn complete_batch(
    app: &App,
    who: &Principal,
    body: CompleteBatch,
    log: &mut LogEntry,
) -> ApiResult<CompletedBatch> {
    let count = body.upload_ids.len();
    if count == 0 {
        return Err(ApiError::new(
            ErrorKind::InvalidJson,
            format!("upload_ids is empty: send 1 to {BATCH_MAX} upload ids"),
        ));
    }
    if count > BATCH_MAX {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("{count} upload ids in one batch; at most {BATCH_MAX}"),
        ));
    }
    let mut seen = HashSet::new();
    let distinct: Vec<String> = body
        .upload_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect();

    // Every reservation in one read; only the caller's tenant's are found.
    let tenant = who.tenant();
    let mut rows: HashMap<String, UploadRow> = match &tenant {
        Ok(_) => app
            .registry()
            .uploads(&distinct)
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut items: Vec<Item> = distinct
        .into_iter()
        .map(|id| {
            let row = rows.remove(&id);
            open_item(who, log, &tenant, id, row)
        })
        .collect();

    // Each bucket's store once, for the uploads in one request.
    let mut stores: HashMap<String, ApiResult<Store>> = HashMap::new();
    for item in &items {
        if let (Step::Check, Some((row, _))) = (&item.step, &item.found) {
            if !stores.contains_key(&row.bucket_id) {
                let store = Store::open(app, &row.bucket_id).await;
                stores.insert(row.bucket_id.clone(), store);
            }
        }
    }

    // Storage, side by side: the checks, and the uploads in parts.
    futures_util::future::join_all(items.iter_mut().map(|item| {
        let stores = &stores;
        async move {
            let Some((row, spec)) = &item.found else {
                return;
            };
            match item.step {
                Step::Multipart => {
                    let answer =
                        super::multipart::complete(app, who, row, spec, &mut item.log).await;
                    item.step = Step::Done(answer);
                }
                Step::Check => {
                    let checked = match stores.get(&row.bucket_id) {
                        Some(Ok(store)) => check_pending(app, who, store, row, spec).await,
                        Some(Err(e)) => Err(e.clone()),
                        None => Err(ApiError::new(
                            ErrorKind::Internal,
                            "this upload's bucket was not opened",
                        )),
                    };
                    item.step = match checked {
                        Ok(()) => {
                            item.log.bytes = spec.size;
                            Step::Commit
                        }
                        Err(e) => Step::Done(Err(e)),
                    };
                }
                Step::Commit | Step::Done(_) => {}
            }
        }
    }))
    .await;

    commit_all(app, &mut items).await?;
    // Every id logged itself; the batch request has no row of its own.
    log.written = true;

    let at: HashMap<&str, &Item> = items.iter().map(|i| (i.id.as_str(), i)).collect();
    Ok(CompletedBatch {
        results: body
            .upload_ids
            .iter()
            .map(|id| answer(at.get(id.as_str()).copied()))
            .collect(),
    })
}

/// One D1 batch: the commit of each verified upload, with its log row, and the log rows of
/// the ids answered already (an id whose own steps logged it, a multipart complete say, is
/// not logged twice). Then each commit's end, as the single route's.
async fn commit_all(app: &App, items: &mut [Item]) -> ApiResult<()> {
    let mut commits = Vec::new();
    let mut committing = Vec::new();
    let mut logs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match (&item.step, &item.found) {
            (Step::Commit, Some((row, spec))) => {
                commits.push(CommitItem {
                    spec,
                    bucket_id: &row.bucket_id,
                    upload_id: Some(&item.id),
                    log: item.log.record(app, None),
                });
                committing.push(i);
            }
            (Step::Done(result), _) if !item.log.written => {
                logs.push(item.log.record(app, result.as_ref().err()));
            }
            _ => {}
        }
    }
    let outcomes = app.registry().commit_many(&commits, &logs).await?;
    drop(commits);
    for item in items.iter_mut() {
        if matches!(item.step, Step::Done(_)) {
            item.log.written = true;
        }
    }
    for (i, outcome) in committing.into_iter().zip(outcomes) {
        let Some(item) = items.get_mut(i) else {
            continue;
        };
        let Some((_, spec)) = &item.found else {
            continue;
        };
        let result = match settle(app, spec, outcome, &mut item.log).await {
            Ok(()) => Ok(committed_answer(spec)),
            Err(e) if e.kind == ErrorKind::UploadClosed => {
                closed_meanwhile(app, &item.id, spec, e).await
            }
            Err(e) => Err(e),
        };
        // Closed meanwhile, the commit wrote nothing: this id's row is written now.
        item.log.write(app, result.as_ref().err()).await?;
        item.step = Step::Done(result);
    }
    Ok(())
}

fn answer(item: Option<&Item>) -> CompleteResult {
    match item.map(|i| &i.step) {
        Some(Step::Done(Ok(complete))) => CompleteResult::Completed(complete.clone()),
        Some(Step::Done(Err(e))) => refusal(e.kind, e.message.clone()),
        // Every id was answered above; none is left in a step.
        _ => refusal(ErrorKind::Internal, "this upload was not handled".into()),
    }
}

fn refusal(kind: ErrorKind, message: String) -> CompleteResult {
    CompleteResult::Refused(BatchRefusal {
        http_status: kind.status(),
        error: ErrorDetail {
            code: kind.code().to_owned(),
            message,
        },
    })
}

/// The first steps of one id, as the single route takes them: its reservation if it is the
/// caller's tenant's (else 404, as for an unknown id), then [`start`].
fn open_item(
    who: &Principal,
    batch: &LogEntry,
    tenant: &ApiResult<&Tenant>,
    id: String,
    row: Option<UploadRow>,
) -> Item {
    let mut item = Item {
        id,
        log: LogEntry {
            operation: Some(Operation::Complete),
            tenant: batch.tenant.clone(),
            key_id: batch.key_id.clone(),
            ..LogEntry::default()
        },
        found: None,
        step: Step::Done(Err(ApiError::not_found("no such upload"))),
    };
    let row = match (tenant, row) {
        (Err(e), _) => {
            item.step = Step::Done(Err(e.clone()));
            return item;
        }
        (Ok(t), Some(row)) if row.tenant == t.as_str() => row,
        _ => return item,
    };
    match start(who, &row, &mut item.log) {
        Err(e) => item.step = Step::Done(Err(e)),
        Ok((_, Some(answer))) => item.step = Step::Done(Ok(answer)),
        Ok((spec, None)) => {
            item.step = if row.multipart_id.is_some() {
                Step::Multipart
            } else {
                Step::Check
            };
            item.found = Some((row, spec));
        }
    }
    item
}
