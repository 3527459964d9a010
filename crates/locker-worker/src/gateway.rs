//! The original gateway API, kept working on top of the same code:
//! `PUT/GET/DELETE /api/files/{namespace}/{path}` and `POST /api/signed-url`.
//!
//! `PUT` is a server-side upload through the Worker (for server clients, not browsers). With an
//! `X-Locker-Sha256` header the body streams straight into R2, which checks the digest;
//! without one the Worker must hash the body before it knows the key, so it buffers it, up to
//! [`MAX_UNHASHED_BODY`].

use locker_core::api::{
    GatewayDeduplicated, GatewayPut, GatewayStored, Operation, SignedUrl, SignedUrlRequest,
};
use locker_core::{validate, LockerRef, Sha256Hex};
use worker::{Request, Response};

use crate::app::App;
use crate::auth::{Op, Principal};
use crate::buckets;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::files;
use crate::log::LogEntry;
use crate::registry::Files;
use crate::uploads::{self, ReserveRequest};

/// Largest body accepted without an `X-Locker-Sha256` header.
pub(crate) const MAX_UNHASHED_BODY: u64 = 32 * 1024 * 1024;

pub(crate) async fn put(
    app: &App,
    who: &Principal,
    req: &mut Request,
    file: &LockerRef,
    log: &mut LogEntry,
) -> ApiResult<GatewayPut> {
    log.namespace = Some(file.namespace.to_string());
    log.path = Some(file.path.to_string());
    let headers = req.headers();
    let content_type = headers
        .get("content-type")?
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let size = headers
        .get("content-length")?
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(|| ApiError::new(ErrorKind::LengthRequired, "send Content-Length"))?;
    let declared = headers.get("x-locker-sha256")?;
    who.require_write_path(&file.namespace, &file.path)?;
    who.check_content(app, size, &content_type)?;
    // The body comes through this Worker, whatever the bucket.
    validate::size_within(size, validate::MAX_SINGLE_UPLOAD)?;
    let (sha256, body) = match declared {
        Some(hex) => (Sha256Hex::parse(&hex)?, None),
        None if size > MAX_UNHASHED_BODY => {
            return Err(ApiError::new(
                ErrorKind::TooLarge,
                format!("bodies over {MAX_UNHASHED_BODY} bytes need an X-Locker-Sha256 header"),
            ))
        }
        None => {
            let bytes = req.bytes().await?;
            (Sha256Hex::digest(&bytes), Some(bytes))
        }
    };
    let (spec, _) = uploads::validate_request(
        app,
        who,
        &ReserveRequest {
            namespace: file.namespace.to_string(),
            path: file.path.to_string(),
            sha256: sha256.to_string(),
            size,
            content_type,
            filename: None,
            expires_in: None,
            // The gateway's body is the one request.
            multipart: Some(false),
        },
    )?;
    let existing = app
        .registry()
        .file_with_sha256(
            spec.tenant.as_str(),
            &sha256.to_string(),
            Some((spec.namespace.as_str(), spec.path.as_str())),
        )
        .await?;
    if uploads::try_dedup(app, who, &spec, log).await?.is_some() {
        let existing_ref = existing
            .map(|e| format!("locker://{}/{}", e.namespace, e.path))
            .unwrap_or_else(|| spec.locker_ref().to_string());
        return Ok(GatewayPut::Deduplicated(GatewayDeduplicated {
            deduplicated: true,
            existing_ref,
            locker_ref: spec.locker_ref().to_string(),
            sha256: sha256.to_string(),
            size_bytes: size,
        }));
    }
    let data = match body {
        Some(bytes) => worker::Data::Bytes(bytes),
        None => uploads::body_data(req, size),
    };
    log.operation = Some(Operation::Upload);
    let (bucket_id, store) = buckets::target(app, &spec.tenant, &spec.namespace).await?;
    log.bucket_id = Some(bucket_id.clone());
    let stored = match store.binding() {
        Some(bucket) => {
            let stored = uploads::store(bucket, &spec, data).await?;
            if !stored {
                // Someone else's write of these bytes won the race; check what is there.
                uploads::verify_stored(app, &store, &spec, uploads::Written::OnePut).await?;
            }
            stored
        }
        None => {
            let key = spec.key();
            let put = spec.put_spec(&key);
            // An S3 server's acceptance is not proof, and some keep the bytes of a PUT they
            // refused: check the stored bytes themselves, and take back what fails.
            let checked = match store.put_s3(app, &put, data).await {
                Ok(stored) => uploads::verify_stored(app, &store, &spec, uploads::Written::OnePut)
                    .await
                    .map(|()| stored),
                Err(e) => Err(e),
            };
            if checked.is_err() {
                let sha = spec.sha256.to_string();
                let tenant = spec.tenant.as_str();
                uploads::remove_unclaimed(app, &bucket_id, tenant, &sha, key.as_str()).await?;
            }
            checked?
        }
    };
    let (_, types) = who.limits(app);
    let head = store.sniff(app, spec.key().as_str(), spec.size).await?;
    if let Err(e) = locker_core::validate::magic_matches(&spec.content_type, &head, &types) {
        // Bytes this request stored and no row points at yet: take them back.
        if stored {
            store.delete(app, spec.key().as_str()).await?;
        }
        return Err(e.into());
    }
    log.bytes = if stored { size } else { 0 };
    uploads::commit(app, &spec, &bucket_id, None, log).await?;
    let tenant = spec.tenant.clone();
    let row = files::find(app, &tenant, &spec.namespace, &spec.path).await?;
    let (url, _) = files::download_url(app, &tenant, &row, files::GET_TTL_S).await?;
    Ok(GatewayPut::Stored(GatewayStored {
        locker_ref: spec.locker_ref().to_string(),
        url,
        sha256: sha256.to_string(),
        size_bytes: size,
    }))
}

/// `GET /api/files/{namespace}/{path}`: the bytes themselves.
pub(crate) async fn get(
    app: &App,
    who: &Principal,
    req: &Request,
    file: &LockerRef,
    log: &mut LogEntry,
) -> ApiResult<Response> {
    let (tenant, row) = files::authorized(app, who, file, Op::Read, log).await?;
    let name = row
        .filename
        .clone()
        .unwrap_or_else(|| file.path.file_name().to_owned());
    let sha = Sha256Hex::parse(&row.sha256)?;
    let what = files::Served {
        tenant,
        bucket_id: &row.bucket_id,
        sha256: &sha,
        content_type: &row.content_type,
        name: &name,
    };
    files::serve(app, req, &what, log).await
}

/// `POST /api/signed-url`.
pub(crate) async fn signed_url(
    app: &App,
    who: &Principal,
    body: SignedUrlRequest,
    log: &mut LogEntry,
) -> ApiResult<SignedUrl> {
    let text = if body.path.starts_with(locker_core::refs::SCHEME) {
        body.path.clone()
    } else {
        format!("{}{}", locker_core::refs::SCHEME, body.path)
    };
    let file: LockerRef = text.parse()?;
    let ttl = body.expires_in.unwrap_or(3600);
    if !(1..=files::MAX_TTL_S).contains(&ttl) {
        return Err(ApiError::new(
            ErrorKind::InvalidExpiresIn,
            format!("expires_in must be 1 to {} seconds", files::MAX_TTL_S),
        ));
    }
    let (tenant, row) = files::authorized(app, who, &file, Op::Read, log).await?;
    let (url, expires_at) = files::download_url(app, tenant, &row, ttl).await?;
    Ok(SignedUrl {
        url,
        expires_at,
        expires_in: ttl,
        locker_ref: file.to_string(),
    })
}
