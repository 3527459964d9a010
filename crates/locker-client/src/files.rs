//! Files: stat, list, delete, signed URLs and downloads.

use std::path::Path;

use futures_util::StreamExt;
use locker_core::api::{Delete, FileInfo, FileList, SignedUrl, SignedUrlRequest};
use locker_core::hash::to_hex;
use locker_core::{LockerRef, Namespace};
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::http::{Answer, Client, Replay};

/// A finished download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    pub info: FileInfo,
    /// Bytes written: the file's size.
    pub bytes: u64,
}

impl Client {
    /// `GET /v1/files/{namespace}/{path}`: metadata and a 5-minute signed download URL.
    pub async fn stat(&self, file: &LockerRef) -> Result<FileInfo> {
        let url = self.file_url(file);
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// One page of `GET /v1/files?namespace=&prefix=&cursor=&limit=`, by path.
    pub async fn list_page(
        &self,
        namespace: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<FileList> {
        let mut url = self.url(["v1", "files"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("namespace", namespace.as_str());
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        self.call(Method::GET, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// Every file below `prefix`, following the cursor.
    pub async fn list_all(&self, namespace: &Namespace, prefix: &str) -> Result<Vec<FileInfo>> {
        let mut files = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .list_page(namespace, prefix, cursor.as_deref(), Some(1000))
                .await?;
            files.extend(page.files);
            match page.cursor {
                Some(c) if cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => return Ok(files),
            }
        }
    }

    /// `DELETE /v1/files/{namespace}/{path}`.
    pub async fn delete(&self, file: &LockerRef) -> Result<Delete> {
        let url = self.file_url(file);
        self.call(Method::DELETE, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `POST /api/signed-url`: a download URL valid `expires_in` seconds (1 s to 7 days).
    pub async fn signed_url(&self, file: &LockerRef, expires_in: Option<u64>) -> Result<SignedUrl> {
        let body = SignedUrlRequest {
            path: file.to_string(),
            expires_in,
        };
        self.call(
            Method::POST,
            self.url(["api", "signed-url"]),
            Some(&body),
            Replay::Idempotent,
        )
        .await
    }

    /// Downloads `file` into `out`, streaming, and checks size and SHA-256 against the registry
    /// before returning: a caller writing to a temporary file renames it only then.
    pub async fn download_to<W: AsyncWrite + Unpin>(
        &self,
        file: &LockerRef,
        out: &mut W,
    ) -> Result<Downloaded> {
        let info = self.stat(file).await?;
        let url = info.url.clone().ok_or_else(|| Error::BadAnswer {
            what: "GET /v1/files".to_owned(),
            message: "no download url".to_owned(),
        })?;
        let res = self.http.get(url).send().await.map_err(Error::Network)?;
        if !res.status().is_success() {
            let answer = Answer::read(res).await.map_err(Error::Network)?;
            return Err(answer.refusal());
        }
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Network)?;
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::io("writing the download", e))?;
        }
        out.flush()
            .await
            .map_err(|e| Error::io("writing the download", e))?;
        let sha256 = to_hex(&hasher.finalize());
        if bytes != info.size || sha256 != info.sha256 {
            return Err(Error::Integrity(format!(
                "got {bytes} bytes with SHA-256 {sha256}, the registry says {} bytes with {}",
                info.size, info.sha256
            )));
        }
        Ok(Downloaded { info, bytes })
    }

    /// Downloads `file` to `dest`: into a temporary file beside it, renamed over `dest` only
    /// once size and SHA-256 are checked, so `dest` never holds partial or wrong bytes.
    pub async fn download_file(&self, file: &LockerRef, dest: &Path) -> Result<Downloaded> {
        let name = dest.file_name().map_or_else(
            || "download".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let tmp = dest.with_file_name(format!(".{name}.locker-{}", std::process::id()));
        let context = || format!("writing {}", tmp.display());
        let mut out = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::io(context(), e))?;
        let result = self.download_to(file, &mut out).await;
        drop(out);
        match result {
            Ok(done) => {
                tokio::fs::rename(&tmp, dest)
                    .await
                    .map_err(|e| Error::io(format!("writing {}", dest.display()), e))?;
                Ok(done)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    fn file_url(&self, file: &LockerRef) -> url::Url {
        self.url(
            ["v1", "files", file.namespace.as_str()]
                .into_iter()
                .chain(file.path.as_str().split('/')),
        )
    }
}
