//! `GET /v1/uploads/{id}`: a reservation's state, with the parts storage holds.

use locker_core::api::{MultipartInfo, StoredPart, UploadInfo, UploadState};

use super::{plan_of, stored_parts, transport};
use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::log::LogEntry;
use crate::store::Store;
use crate::uploads::{own_upload, FileSpec};

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
