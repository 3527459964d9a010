//! The parts: their signed URLs (`POST /v1/uploads/{id}/parts`) and, through the Worker, the
//! data plane of one part.

use std::collections::{BTreeMap, BTreeSet};

use locker_core::api::{Operation, PartPut, PartUrl, PartUrls, PartsRequest};
use locker_core::multipart::MAX_PARTS_PER_REQUEST;
use locker_core::s3::PartSpec;
use locker_core::sign::PartClaims;
use locker_core::Sha256Hex;
use worker::Request;

use super::{closed, multipart_of, storage};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::registry::{PartDecl, Parts};
use crate::store::Store;
use crate::uploads::data::require_length;
use crate::uploads::{load_upload, own_upload, FileSpec};

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
            Store::S3(b, _) => {
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
