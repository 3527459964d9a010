//! Files: metadata with a signed download URL, paged listing, delete, and the signed download
//! route that streams from R2.

use locker_core::api::{Delete, FileInfo, FileList, Operation};
use locker_core::sign::GetClaims;
use locker_core::validate::{content_disposition, must_download};
use locker_core::{ByteRange, LockerRef, LogicalPath, Namespace, ObjectKey, Sha256Hex, Tenant};
use worker::{Range, Request, Response, ResponseBody};

use crate::app::App;
use crate::auth::{Op, Principal};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::log::LogEntry;
use crate::params::Params;
use crate::registry::{FilePage, FileRow, Files};
use crate::store::{r2_failed, Store};
use crate::uploads::release_blob;

/// Default and largest lifetime of a signed download URL, seconds.
pub(crate) const GET_TTL_S: u64 = 300;
pub(crate) const MAX_TTL_S: u64 = 7 * 24 * 3600;

impl FileRow {
    fn locker_ref(&self) -> String {
        format!("locker://{}/{}", self.namespace, self.path)
    }

    /// The answer for this file, without a download URL.
    fn info(&self) -> FileInfo {
        FileInfo {
            locker_ref: self.locker_ref(),
            namespace: self.namespace.clone(),
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            filename: self.filename.clone(),
            bucket_id: self.bucket_id.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            url: None,
            url_expires_at: None,
        }
    }
}

/// The caller's file at `namespace/path`; another tenant's answers exactly like a missing one.
pub(crate) async fn find(
    app: &App,
    tenant: &Tenant,
    ns: &Namespace,
    path: &LogicalPath,
) -> ApiResult<FileRow> {
    let row = app
        .registry()
        .file(tenant.as_str(), ns.as_str(), path.as_str())
        .await?;
    row.ok_or_else(|| ApiError::not_found(format!("no file locker://{ns}/{path}")))
}

/// The caller's file at `file`, after checking `op` on its namespace; the log learns the ref
/// first (so a refusal names it) and then the blob.
pub(crate) async fn authorized<'p>(
    app: &App,
    who: &'p Principal,
    file: &LockerRef,
    op: Op,
    log: &mut LogEntry,
) -> ApiResult<(&'p Tenant, FileRow)> {
    log.namespace = Some(file.namespace.to_string());
    log.path = Some(file.path.to_string());
    who.require(op, Some(&file.namespace))?;
    let tenant = who.tenant()?;
    let row = find(app, tenant, &file.namespace, &file.path).await?;
    log.tenant = Some(tenant.to_string());
    log.sha256 = Some(row.sha256.clone());
    log.bucket_id = Some(row.bucket_id.clone());
    Ok((tenant, row))
}

fn file_name_of(row: &FileRow) -> String {
    row.filename
        .clone()
        .unwrap_or_else(|| row.path.rsplit('/').next().unwrap_or(&row.path).to_owned())
}

/// A signed download URL for `row`, valid `ttl` seconds: presigned straight to storage for a
/// bucket reached through the S3 API, else this Worker's download route.
pub(crate) async fn download_url(
    app: &App,
    tenant: &Tenant,
    row: &FileRow,
    ttl: u64,
) -> ApiResult<(String, u64)> {
    let exp = app.now_s() + ttl;
    let name = file_name_of(row);
    let sha256 = Sha256Hex::parse(&row.sha256)?;
    let store = Store::open(app, &row.bucket_id).await?;
    let key = ObjectKey::for_blob(tenant, &sha256);
    let disposition = content_disposition(must_download(&row.content_type), &name);
    if let Some(url) = store.presign_get(app, key.as_str(), ttl, &disposition, &row.content_type)? {
        return Ok((url, exp));
    }
    let token = app.signer.sign(&GetClaims {
        t: tenant.clone(),
        sha256,
        ct: row.content_type.clone(),
        name,
        exp,
    });
    Ok((format!("{}/v1/download?sig={token}", app.origin), exp))
}

/// `GET /v1/files/{namespace}/{path}`: metadata and a short-lived download URL.
pub(crate) async fn get(
    app: &App,
    who: &Principal,
    file: &LockerRef,
    log: &mut LogEntry,
) -> ApiResult<FileInfo> {
    let (tenant, row) = authorized(app, who, file, Op::Read, log).await?;
    let (url, expires_at) = download_url(app, tenant, &row, GET_TTL_S).await?;
    Ok(FileInfo {
        url: Some(url),
        url_expires_at: Some(expires_at),
        ..row.info()
    })
}

/// `GET /v1/files?namespace=&prefix=&cursor=&limit=`: one page, ordered by path.
pub(crate) async fn list(
    app: &App,
    who: &Principal,
    query: &[(String, String)],
) -> ApiResult<FileList> {
    let query = Params(query);
    let ns = Namespace::parse(query.get("namespace").unwrap_or_default())?;
    who.require(Op::Read, Some(&ns))?;
    let tenant = who.tenant()?;
    let prefix = query.get("prefix").unwrap_or_default();
    let cursor = query.get("cursor").unwrap_or_default();
    let limit = query.page_limit()?;
    let rows = app
        .registry()
        .list_files(&FilePage {
            tenant: tenant.as_str(),
            namespace: ns.as_str(),
            prefix,
            cursor,
            limit,
        })
        .await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.path.clone()))
        .flatten();
    Ok(FileList {
        files: rows.iter().map(FileRow::info).collect(),
        cursor: next,
    })
}

/// `DELETE /v1/files/{namespace}/{path}`: removes the file; the bytes go only when no other
/// file of the tenant points at them.
pub(crate) async fn delete(
    app: &App,
    who: &Principal,
    file: &LockerRef,
    log: &mut LogEntry,
) -> ApiResult<Delete> {
    let (tenant, row) = authorized(app, who, file, Op::Delete, log).await?;
    log.operation = Some(Operation::Delete);
    let deleted = app
        .registry()
        .delete_file(
            tenant.as_str(),
            file.namespace.as_str(),
            file.path.as_str(),
            &row.sha256,
            &log.record(app, None),
        )
        .await?;
    log.written = true;
    if !deleted {
        return Err(ApiError::new(
            ErrorKind::Changed,
            "the file changed while deleting; retry",
        ));
    }
    let bytes_deleted = release_blob(app, tenant.as_str(), &row.sha256).await?;
    Ok(Delete {
        deleted: true,
        locker_ref: file.to_string(),
        bytes_deleted,
    })
}

/// Which stored bytes to serve, and as what.
pub(crate) struct Served<'a> {
    pub tenant: &'a Tenant,
    pub bucket_id: &'a str,
    pub sha256: &'a Sha256Hex,
    pub content_type: &'a str,
    /// The download's file name.
    pub name: &'a str,
}

/// Streams a blob with headers that keep stored bytes from running as this origin's script.
pub(crate) async fn serve(
    app: &App,
    req: &Request,
    what: &Served<'_>,
    log: &mut LogEntry,
) -> ApiResult<Response> {
    let Served {
        tenant,
        bucket_id,
        sha256,
        content_type,
        name,
    } = *what;
    let key = ObjectKey::for_blob(tenant, sha256);
    log.operation = Some(Operation::Download);
    log.tenant = Some(tenant.to_string());
    log.sha256 = Some(sha256.to_string());
    log.bucket_id = Some(bucket_id.to_owned());
    let store = Store::open(app, bucket_id).await?;
    let disposition = content_disposition(must_download(content_type), name);
    let Some(bucket) = store.binding() else {
        // Bytes in a bucket reached through the S3 API are fetched from it directly.
        let url = store
            .presign_get(app, key.as_str(), GET_TTL_S, &disposition, content_type)?
            .unwrap_or_default();
        let mut response = Response::empty()?.with_status(302);
        response.headers_mut().set("location", &url)?;
        response.headers_mut().set("cache-control", "no-store")?;
        return Ok(response);
    };
    let head = bucket
        .head(key.as_str())
        .await
        .map_err(r2_failed("read a file's metadata"))?
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let size = head.size();
    // Every range of 0 bytes is unsatisfiable, so an empty file is only ever served whole.
    let range = ByteRange::parse(req.headers().get("range")?.as_deref(), size)
        .map_err(|e| ApiError::new(ErrorKind::RangeNotSatisfiable, e.to_string()))?
        .map(|r| (r.first(), r.last()));
    let body = if size == 0 {
        // Nothing to read; R2 answers an empty object without a body.
        ResponseBody::Body(Vec::new())
    } else {
        let mut get = bucket.get(key.as_str());
        if let Some((start, end)) = range {
            get = get.range(Range::OffsetWithLength {
                offset: start,
                length: end - start + 1,
            });
        }
        let object = get
            .execute()
            .await
            .map_err(r2_failed("read a file"))?
            .ok_or_else(|| ApiError::not_found("no such file"))?;
        object
            .body()
            .ok_or_else(|| ApiError::not_found("no such file"))?
            .response_body()
            .map_err(r2_failed("read a file"))?
    };
    let mut response = Response::from_body(body)?;
    let headers = response.headers_mut();
    headers.set("content-type", content_type)?;
    headers.set("content-disposition", &disposition)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("content-security-policy", "default-src 'none'; sandbox")?;
    headers.set("cache-control", "private, max-age=300")?;
    headers.set("accept-ranges", "bytes")?;
    headers.set("etag", &format!("\"{sha256}\""))?;
    let response = match range {
        Some((start, end)) => {
            headers.set("content-range", &format!("bytes {start}-{end}/{size}"))?;
            headers.set("content-length", &(end - start + 1).to_string())?;
            log.bytes = end - start + 1;
            response.with_status(206)
        }
        None => {
            headers.set("content-length", &size.to_string())?;
            log.bytes = size;
            response
        }
    };
    Ok(response)
}

/// `GET /v1/download?sig=`: the signature is the credential.
pub(crate) async fn download(
    app: &App,
    req: &Request,
    sig: &str,
    log: &mut LogEntry,
) -> ApiResult<Response> {
    let claims: GetClaims = app.signer.verify(sig, app.now_s())?;
    // Only while some file of the tenant still points at these bytes.
    let live = app
        .registry()
        .file_with_sha256(claims.t.as_str(), &claims.sha256.to_string(), None)
        .await?;
    let Some(live) = live else {
        log.tenant = Some(claims.t.to_string());
        return Err(ApiError::not_found("this file was deleted"));
    };
    let what = Served {
        tenant: &claims.t,
        bucket_id: &live.bucket_id,
        sha256: &claims.sha256,
        content_type: &claims.ct,
        name: &claims.name,
    };
    serve(app, req, &what, log).await
}
