//! The multipart reservation: the upload started in storage, and the plan of its parts.

use locker_core::api::{MultipartPlan, Operation, Reserved};
use locker_core::multipart::{PartPlan, MAX_PARTS_PER_REQUEST};

use super::{storage, transport};
use crate::app::{random_id, App};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::log::LogEntry;
use crate::registry::{NewUpload, Uploads};
use crate::store::Store;
use crate::uploads::FileSpec;

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
