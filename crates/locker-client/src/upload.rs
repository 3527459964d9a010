//! Putting a file: hash it, reserve (or learn it is stored already), send the bytes to the
//! signed URL of either transport, complete.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use locker_core::api::{Complete, ReserveRequest, Reserved, UploadPlan};
use locker_core::client::renews_reservation;
use locker_core::hash::to_hex;
use locker_core::LockerRef;
use reqwest::{header, Method};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::http::{Answer, Client, Replay};

/// Read size for hashing and sending: large enough that syscalls cost nothing next to the
/// hash, small enough that many parallel uploads stay in constant memory.
const CHUNK: usize = 256 * 1024;

/// A signed URL that expired before its transfer finished is replaced by a fresh reservation
/// this many times in all (the browser module's rule).
const RESERVATIONS: u32 = 3;

/// Called with the number of bytes just sent (or hashed, while hashing).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// A file's SHA-256 and size, read from disk once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub size: u64,
}

/// Hashes a file in constant memory on a blocking thread (`sha2` picks the CPU's SHA
/// extensions at run time where it has them).
pub async fn hash_file(path: &Path, progress: Option<Progress>) -> Result<FileDigest> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let context = || format!("reading {}", path.display());
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io(context(), e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 4 * CHUNK];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(context(), e))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            size += n as u64;
            if let Some(p) = &progress {
                p(n as u64);
            }
        }
        Ok(FileDigest {
            sha256: to_hex(&hasher.finalize()),
            size,
        })
    })
    .await
    .map_err(|e| Error::io("hashing", std::io::Error::other(e.to_string())))?
}

/// How to put a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOptions {
    /// The MIME type declared to the Worker (checked against the key's types and the bytes'
    /// magic number).
    pub content_type: String,
    /// Display name for downloads; default the path's last segment.
    pub filename: Option<String>,
    /// Lifetime of the signed upload URL, seconds (1-3600).
    pub expires_in: Option<u64>,
}

impl PutOptions {
    pub fn new(content_type: impl Into<String>) -> Self {
        Self {
            content_type: content_type.into(),
            filename: None,
            expires_in: None,
        }
    }
}

/// A file put: either its bytes were sent now, or the tenant had them already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    #[doc(alias = "ref")]
    pub locker_ref: String,
    pub sha256: String,
    pub size: u64,
    /// Nothing was sent: the tenant stored these bytes before.
    pub deduplicated: bool,
    /// Body bytes sent to storage, retries included (0 on a dedup).
    pub bytes_sent: u64,
    /// Where the time went, in milliseconds: asking the Worker (reservations), sending the
    /// bytes, and the Worker's verification of what was stored (complete).
    pub reserve_ms: u64,
    pub transfer_ms: u64,
    pub complete_ms: u64,
}

fn ms_since(t: std::time::Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Only the `status` of a reservation answer: read when [`Reserved`] does not decode, to tell
/// a plan kind this client does not know (multipart, from a newer Worker) from a broken answer.
#[derive(Deserialize)]
struct StatusOnly {
    status: String,
    #[serde(default)]
    upload_id: Option<String>,
}

impl Client {
    /// Puts the file at `path` at `dest`: hashes it, then [`Client::put_hashed`].
    pub async fn put_file(
        &self,
        path: &Path,
        dest: &LockerRef,
        options: &PutOptions,
        progress: Option<Progress>,
    ) -> Result<Stored> {
        let digest = hash_file(path, None).await?;
        self.put_hashed(path, &digest, dest, options, progress)
            .await
    }

    /// Puts the file at `path`, whose digest is known, at `dest`. On a dedup nothing is read
    /// or sent. A transfer whose URL expired gets a fresh reservation (up to three in all);
    /// a reservation left behind by a final failure is aborted.
    pub async fn put_hashed(
        &self,
        path: &Path,
        digest: &FileDigest,
        dest: &LockerRef,
        options: &PutOptions,
        progress: Option<Progress>,
    ) -> Result<Stored> {
        let request = ReserveRequest {
            namespace: dest.namespace.as_str().to_owned(),
            path: dest.path.as_str().to_owned(),
            sha256: digest.sha256.clone(),
            size: digest.size,
            content_type: options.content_type.clone(),
            filename: options.filename.clone(),
            expires_in: options.expires_in,
            // One request per file until the client sends parts: the Worker then refuses a
            // file too large for one PUT with a clear 413 instead of offering a plan in parts.
            multipart: Some(false),
        };
        let mut bytes_sent = 0;
        let mut reservation = 1;
        let (mut reserve_ms, mut transfer_ms) = (0, 0);
        loop {
            let started = std::time::Instant::now();
            let reserved = self.reserve(&request).await?;
            reserve_ms += ms_since(started);
            let plan = match reserved {
                Reserved::Deduplicated(d) => {
                    return Ok(Stored {
                        locker_ref: d.locker_ref,
                        sha256: d.sha256,
                        size: d.size,
                        deduplicated: true,
                        bytes_sent,
                        reserve_ms,
                        transfer_ms,
                        complete_ms: 0,
                    })
                }
                Reserved::Upload(plan) => plan,
                Reserved::Multipart(parts) => {
                    // Not asked for (`multipart: false` above): a server that offers it anyway
                    // gets its reservation back.
                    self.abort_quietly(&parts.upload_id).await;
                    return Err(Error::UnsupportedPlan(format!(
                        "an upload in parts ({}) that was not asked for",
                        parts.upload_id
                    )));
                }
            };
            if !plan.method.eq_ignore_ascii_case("PUT") {
                self.abort_quietly(&plan.upload_id).await;
                return Err(Error::UnsupportedPlan(format!(
                    "method {} for upload {}",
                    plan.method, plan.upload_id
                )));
            }
            let started = std::time::Instant::now();
            let sent = self
                .transfer(path, digest.size, &plan, progress.clone(), &mut bytes_sent)
                .await;
            transfer_ms += ms_since(started);
            match sent {
                Ok(()) => {}
                Err(e) if renews_reservation(e.code()) && reservation < RESERVATIONS => {
                    reservation += 1;
                    continue;
                }
                Err(e) => {
                    self.abort_quietly(&plan.upload_id).await;
                    return Err(e);
                }
            }
            let started = std::time::Instant::now();
            let done = self.complete(&plan.upload_id).await?;
            return Ok(Stored {
                locker_ref: done.locker_ref,
                sha256: done.sha256,
                size: done.size,
                deduplicated: false,
                bytes_sent,
                reserve_ms,
                transfer_ms,
                complete_ms: ms_since(started),
            });
        }
    }

    /// `POST /v1/uploads`.
    pub async fn reserve(&self, request: &ReserveRequest) -> Result<Reserved> {
        let json = serde_json::to_vec(request)
            .map_err(|e| Error::Invalid(format!("cannot encode the request: {e}")))?;
        let answer = self
            .send(
                Method::POST,
                self.url(["v1", "uploads"]),
                Some(json),
                Replay::Idempotent,
            )
            .await?;
        match answer.decode::<Reserved>("POST /v1/uploads") {
            Ok(r) => Ok(r),
            Err(e) => match serde_json::from_slice::<StatusOnly>(&answer.body) {
                Ok(other) if other.status != "upload" && other.status != "deduplicated" => {
                    if let Some(id) = &other.upload_id {
                        self.abort_quietly(id).await;
                    }
                    Err(Error::UnsupportedPlan(format!(
                        "status {:?} (multipart or another plan this client does not implement yet)",
                        other.status
                    )))
                }
                _ => Err(e),
            },
        }
    }

    /// `POST /v1/uploads/{id}/complete`: the Worker verifies what was stored and commits.
    pub async fn complete(&self, upload_id: &str) -> Result<Complete> {
        let url = self.url(["v1", "uploads", upload_id, "complete"]);
        self.call(Method::POST, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `DELETE /v1/uploads/{id}`: releases a pending reservation.
    pub async fn abort(&self, upload_id: &str) -> Result<locker_core::api::Abort> {
        let url = self.url(["v1", "uploads", upload_id]);
        self.call(Method::DELETE, url, None::<&()>, Replay::Idempotent)
            .await
    }

    async fn abort_quietly(&self, upload_id: &str) {
        // The reservation expires by itself if this fails too; the caller's error matters more.
        let _ = self.abort(upload_id).await;
    }

    /// Sends the file to the plan's signed URL, streaming from disk, with the plan's headers
    /// (all signed) and an exact `content-length`; retried as the shared rules say. The signed
    /// URL is the credential here: the API key is never sent to storage.
    async fn transfer(
        &self,
        path: &Path,
        size: u64,
        plan: &UploadPlan,
        progress: Option<Progress>,
        bytes_sent: &mut u64,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let counted = progress.clone();
            let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sent_in_stream = Arc::clone(&sent);
            let stream = ReaderStream::with_capacity(file.take(size), CHUNK).inspect_ok(
                move |chunk: &bytes::Bytes| {
                    let n = chunk.len() as u64;
                    sent_in_stream.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    if let Some(p) = &counted {
                        p(n);
                    }
                },
            );
            let mut req = self
                .http
                .put(plan.url.as_str())
                .header(header::CONTENT_LENGTH, size)
                .body(reqwest::Body::wrap_stream(stream));
            for (name, value) in &plan.headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let outcome = match req.send().await {
                Ok(res) => match Answer::read(res).await {
                    Ok(a) if a.status.is_success() => Ok(()),
                    Ok(a) => Err((Some(a.status.as_u16()), a.refusal())),
                    Err(e) => Err((None, Error::Network(e))),
                },
                Err(e) => Err((None, Error::Network(e))),
            };
            *bytes_sent += sent.load(std::sync::atomic::Ordering::Relaxed);
            let (status, failure) = match outcome {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            match self
                .retry
                .next_delay(attempt, status, failure.code(), fastrand::f64())
            {
                Some(ms) => {
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                    attempt += 1;
                }
                None => return Err(failure),
            }
        }
    }
}
