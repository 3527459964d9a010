//! Putting a file: hash it, reserve (or learn it is stored already), send the bytes to the
//! signed URL of either transport, complete.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use locker_core::api::{
    BatchRefusal, BatchResult, Complete, CompleteBatch, CompleteResult, CompletedBatch,
    MultipartPlan, PartDigest, PartUrls, PartsRequest, ReserveBatch, ReserveRequest, Reserved,
    ReservedBatch, UploadPlan, BATCH_MAX,
};
use locker_core::client::{renews_reservation, Source};
use locker_core::hash::to_hex;
use locker_core::multipart::{self, PartPlan};
use locker_core::LockerRef;
use reqwest::{header, Method};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
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

/// A file's SHA-256 and size, read from disk once; with the SHA-256 of each part when it was
/// hashed for an upload in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// 64 lowercase hex digits.
    pub sha256: String,
    pub size: u64,
    /// The SHA-256 of each part of [`locker_core::multipart::part_size`] bytes, in order; empty
    /// when the file was hashed whole only.
    pub parts: Vec<String>,
}

/// Hashes a file in constant memory on a blocking thread (`sha2` picks the CPU's SHA
/// extensions at run time where it has them).
pub async fn hash_file(path: &Path, progress: Option<Progress>) -> Result<FileDigest> {
    hash_file_parts(path, u64::MAX, progress).await
}

/// [`hash_file`], and also each part's SHA-256 in the same read when the file has
/// `threshold` bytes or more (it is then uploaded in parts of the planner's size, which
/// depends on the size alone).
pub async fn hash_file_parts(
    path: &Path,
    threshold: u64,
    progress: Option<Progress>,
) -> Result<FileDigest> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let context = || format!("reading {}", path.display());
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io(context(), e))?;
        let expected = file.metadata().map_err(|e| Error::io(context(), e))?.len();
        // The part boundaries come from the size seen before reading; a file that changes
        // size meanwhile is caught below (its digest no longer fits the plan).
        let part_size = multipart::is_multipart(expected, None, threshold)
            .then(|| multipart::part_size(expected));
        let mut hasher = Sha256::new();
        let mut part = Sha256::new();
        let mut in_part = 0u64;
        let mut parts = Vec::new();
        let mut buf = vec![0u8; 4 * CHUNK];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(context(), e))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            if let Some(part_size) = part_size {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let room = usize::try_from(part_size - in_part).unwrap_or(usize::MAX);
                    let (now, later) = rest.split_at(room.min(rest.len()));
                    part.update(now);
                    in_part += now.len() as u64;
                    if in_part == part_size {
                        parts.push(to_hex(&part.finalize_reset()));
                        in_part = 0;
                    }
                    rest = later;
                }
            }
            size += n as u64;
            if let Some(p) = &progress {
                p(n as u64);
            }
        }
        if in_part > 0 {
            parts.push(to_hex(&part.finalize()));
        }
        if part_size.is_some() && size != expected {
            return Err(Error::Invalid(format!(
                "{} changed size while it was read ({expected} then {size} bytes)",
                path.display()
            )));
        }
        Ok(FileDigest {
            sha256: to_hex(&hasher.finalize()),
            size,
            parts,
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
    /// `Some(n)`: files of `n` bytes or more are sent in parts, smaller ones in one request;
    /// the reservation asks for that, so the Worker's own rule never decides. `None` (the
    /// default): the reservation leaves the plan to the Worker, which answers parts from its
    /// threshold on (64 MiB unless configured), except into a bucket that verifies one request
    /// at no cost (an `s3` bucket with `verify: checksum`), where every file one request
    /// carries is one request. Either plan is followed; see [`PutOptions::hash_threshold`].
    pub multipart_threshold: Option<u64>,
    /// Parts of one file in flight at once (at least 1; default 4).
    pub part_concurrency: usize,
}

impl PutOptions {
    pub fn new(content_type: impl Into<String>) -> Self {
        Self {
            content_type: content_type.into(),
            filename: None,
            expires_in: None,
            multipart_threshold: None,
            part_concurrency: 4,
        }
    }

    /// The size from which [`hash_file_parts`] should take the parts' digests too, in the
    /// same read as the file's: the caller's threshold. With the plan left to the Worker, no
    /// size: the file is hashed whole, and only a plan in parts reads it once more to hash its
    /// parts. Taking the parts' digests along costs as much CPU as the file's own (1 GiB: 0.7
    /// s alone, 1.3 s with its parts, measured on this repository's machine, with no gain from
    /// a second thread there), and one PUT into a `checksum` bucket, which needs none, is
    /// exactly where the hash is a large part of the time; a plan in parts spends seconds on
    /// its complete, next to which the second read is small.
    pub fn hash_threshold(&self) -> u64 {
        self.multipart_threshold.unwrap_or(u64::MAX)
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

/// Where [`Client::send_reserved`] stops: the file is stored (deduplicated, or sent in parts
/// and completed), or its bytes are at the signed URL of a single-request upload that still
/// needs its complete, alone ([`Client::complete`]) or with others
/// ([`Client::complete_batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Stored(Stored),
    Transferred(Transferred),
}

/// A single-request upload whose bytes were sent and which is not completed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transferred {
    /// `up_...`, to complete.
    pub upload_id: String,
    /// As in [`Stored`].
    pub bytes_sent: u64,
    pub reserve_ms: u64,
    pub transfer_ms: u64,
}

impl Transferred {
    /// The file stored, once the Worker answered its complete with `done` after `complete_ms`
    /// (a batch's whole time, when it was completed in one).
    pub fn finish(self, done: Complete, complete_ms: u64) -> Stored {
        Stored {
            locker_ref: done.locker_ref,
            sha256: done.sha256,
            size: done.size,
            deduplicated: false,
            bytes_sent: self.bytes_sent,
            reserve_ms: self.reserve_ms,
            transfer_ms: self.transfer_ms,
            complete_ms,
        }
    }
}

/// The per-id results of a batch complete of `asked` ids, each refusal as the
/// [`Error::Refused`] the single route would have given.
fn complete_results(answered: CompletedBatch, asked: usize) -> Result<Vec<Result<Complete>>> {
    if answered.results.len() != asked {
        return Err(Error::BadAnswer {
            what: "POST /v1/uploads:complete".to_owned(),
            message: format!("{} results for {asked} uploads", answered.results.len()),
        });
    }
    Ok(answered
        .results
        .into_iter()
        .map(|r| match r {
            CompleteResult::Completed(done) => Ok(done),
            CompleteResult::Refused(refusal) => Err(refused(refusal)),
        })
        .collect())
}

/// A batch item's refusal as the error the single route's answer would have been.
fn refused(BatchRefusal { http_status, error }: BatchRefusal) -> Error {
    Error::Refused {
        status: http_status,
        code: error.code,
        message: error.message,
        source_kind: Source::Worker,
    }
}

/// Whether a refusal means the server has no such route (a Worker older than it): 405, or
/// 404 `route_not_found` (a 404 of another code is about the thing asked for).
fn no_route(e: &Error) -> bool {
    matches!(e, Error::Refused { status, code, .. }
        if *status == 405 || (*status == 404 && code == "route_not_found"))
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
        self.put_reserved(path, digest, dest, options, progress, None)
            .await
    }

    /// The reservation [`Client::put_hashed`] asks for: the same for one file or in a batch.
    pub fn reserve_request(
        digest: &FileDigest,
        dest: &LockerRef,
        options: &PutOptions,
    ) -> ReserveRequest {
        ReserveRequest {
            namespace: dest.namespace.as_str().to_owned(),
            path: dest.path.as_str().to_owned(),
            sha256: digest.sha256.clone(),
            size: digest.size,
            content_type: options.content_type.clone(),
            filename: options.filename.clone(),
            expires_in: options.expires_in,
            multipart: options
                .multipart_threshold
                .map(|t| multipart::is_multipart(digest.size, None, t)),
        }
    }

    /// [`Client::put_hashed`], starting from `first`, the answer to
    /// [`Client::reserve_request`] already obtained (from [`Client::reserve_batch`]) and the
    /// milliseconds it took; `None` reserves here. A reservation renewed after an expired URL
    /// is asked for alone.
    pub async fn put_reserved(
        &self,
        path: &Path,
        digest: &FileDigest,
        dest: &LockerRef,
        options: &PutOptions,
        progress: Option<Progress>,
        first: Option<(Reserved, u64)>,
    ) -> Result<Stored> {
        match self
            .send_reserved(path, digest, dest, options, progress, first)
            .await?
        {
            Sent::Stored(stored) => Ok(stored),
            Sent::Transferred(sent) => {
                let started = std::time::Instant::now();
                let done = self.complete(&sent.upload_id).await?;
                Ok(sent.finish(done, ms_since(started)))
            }
        }
    }

    /// [`Client::put_reserved`] up to the complete of a single-request upload, which is left
    /// to the caller ([`Sent::Transferred`]), so that many files' completes can go in one
    /// [`Client::complete_batch`]. Dedups and uploads in parts come back stored.
    pub async fn send_reserved(
        &self,
        path: &Path,
        digest: &FileDigest,
        dest: &LockerRef,
        options: &PutOptions,
        progress: Option<Progress>,
        mut first: Option<(Reserved, u64)>,
    ) -> Result<Sent> {
        let request = Self::reserve_request(digest, dest, options);
        // Parts asked for, or left to the Worker.
        let in_parts = request.multipart != Some(false);
        let mut bytes_sent = 0;
        let mut reservation = 1;
        let (mut reserve_ms, mut transfer_ms) = (0, 0);
        loop {
            let reserved = match first.take() {
                Some((reserved, ms)) => {
                    reserve_ms += ms;
                    reserved
                }
                None => {
                    let started = std::time::Instant::now();
                    let reserved = self.reserve(&request).await?;
                    reserve_ms += ms_since(started);
                    reserved
                }
            };
            let plan = match reserved {
                Reserved::Deduplicated(d) => {
                    return Ok(Sent::Stored(Stored {
                        locker_ref: d.locker_ref,
                        sha256: d.sha256,
                        size: d.size,
                        deduplicated: true,
                        bytes_sent,
                        reserve_ms,
                        transfer_ms,
                        complete_ms: 0,
                    }))
                }
                Reserved::Upload(plan) => plan,
                Reserved::Multipart(parts) if in_parts => {
                    let started = std::time::Instant::now();
                    let sent = self
                        .put_parts(
                            path,
                            digest,
                            &parts,
                            options,
                            progress.clone(),
                            &mut bytes_sent,
                        )
                        .await;
                    transfer_ms += ms_since(started);
                    if let Err(e) = sent {
                        self.abort_quietly(&parts.upload_id).await;
                        return Err(e);
                    }
                    let started = std::time::Instant::now();
                    let done = match self.complete(&parts.upload_id).await {
                        Ok(done) => done,
                        Err(e) => {
                            self.abort_quietly(&parts.upload_id).await;
                            return Err(e);
                        }
                    };
                    return Ok(Sent::Stored(Stored {
                        locker_ref: done.locker_ref,
                        sha256: done.sha256,
                        size: done.size,
                        deduplicated: false,
                        bytes_sent,
                        reserve_ms,
                        transfer_ms,
                        complete_ms: ms_since(started),
                    }));
                }
                Reserved::Multipart(parts) => {
                    // Refused (`multipart: false` above): a server that offers it anyway gets
                    // its reservation back.
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
            return Ok(Sent::Transferred(Transferred {
                upload_id: plan.upload_id,
                bytes_sent,
                reserve_ms,
                transfer_ms,
            }));
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

    /// `POST /v1/uploads:batch`: up to [`BATCH_MAX`] reservations in one request, answered
    /// item by item in order; a refused item is its own [`Error::Refused`] with the status the
    /// single route would answer. `Ok(None)`: this server has no batch route (404
    /// `route_not_found` or 405, a Worker older than the route): reserve one by one instead.
    pub async fn reserve_batch(
        &self,
        requests: &[ReserveRequest],
    ) -> Result<Option<Vec<Result<Reserved>>>> {
        if requests.len() > BATCH_MAX {
            return Err(Error::Invalid(format!(
                "{} reservations in one batch; at most {BATCH_MAX}",
                requests.len()
            )));
        }
        let batch = ReserveBatch {
            uploads: requests.to_vec(),
        };
        let Some(answered): Option<ReservedBatch> =
            self.post_batch("uploads:batch", &batch).await?
        else {
            return Ok(None);
        };
        if answered.results.len() != requests.len() {
            return Err(Error::BadAnswer {
                what: "POST /v1/uploads:batch".to_owned(),
                message: format!(
                    "{} results for {} reservations",
                    answered.results.len(),
                    requests.len()
                ),
            });
        }
        Ok(Some(
            answered
                .results
                .into_iter()
                .map(|r| match r {
                    BatchResult::Reserved(reserved) => Ok(reserved),
                    BatchResult::Refused(refusal) => Err(refused(refusal)),
                })
                .collect(),
        ))
    }

    /// `POST /v1/uploads/{id}/complete`: the Worker verifies what was stored and commits.
    pub async fn complete(&self, upload_id: &str) -> Result<Complete> {
        let url = self.url(["v1", "uploads", upload_id, "complete"]);
        self.call(Method::POST, url, None::<&()>, Replay::Idempotent)
            .await
    }

    /// `POST /v1/uploads:complete`: up to [`BATCH_MAX`] completes in one request, answered id
    /// by id in order, each as [`Client::complete`] would (a refused id is its own
    /// [`Error::Refused`] with the single route's status and code). `Ok(None)`: this server
    /// has no batch complete (404 `route_not_found` or 405, a Worker older than the route):
    /// complete one by one instead.
    pub async fn complete_batch(
        &self,
        upload_ids: &[String],
    ) -> Result<Option<Vec<Result<Complete>>>> {
        if upload_ids.len() > BATCH_MAX {
            return Err(Error::Invalid(format!(
                "{} completes in one batch; at most {BATCH_MAX}",
                upload_ids.len()
            )));
        }
        if upload_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let batch = CompleteBatch {
            upload_ids: upload_ids.to_vec(),
        };
        // Completing twice answers what the first complete did: safe to retry as a whole.
        let Some(answered): Option<CompletedBatch> =
            self.post_batch("uploads:complete", &batch).await?
        else {
            return Ok(None);
        };
        complete_results(answered, upload_ids.len()).map(Some)
    }

    /// `POST /v1/{route}` of a batch (`uploads:batch`, `uploads:complete`), sent again as a
    /// whole on network errors and 5xx (each item's single route is idempotent too).
    /// `Ok(None)`: this server has no such route (404 `route_not_found` or 405).
    async fn post_batch<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<Option<T>> {
        let json = serde_json::to_vec(body)
            .map_err(|e| Error::Invalid(format!("cannot encode the request: {e}")))?;
        let url = self.url(["v1", route]);
        match self
            .send(Method::POST, url, Some(json), Replay::Idempotent)
            .await
        {
            Ok(answer) => answer.decode(&format!("POST /v1/{route}")).map(Some),
            Err(e) if no_route(&e) => Ok(None),
            Err(e) => Err(e),
        }
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

    /// Sends every part of an upload in parts: part URLs asked in batches of the plan's
    /// maximum, `part_concurrency` parts in flight, each streamed from disk at its offset.
    async fn put_parts(
        &self,
        path: &Path,
        digest: &FileDigest,
        plan: &MultipartPlan,
        options: &PutOptions,
        progress: Option<Progress>,
        bytes_sent: &mut u64,
    ) -> Result<()> {
        let parts = PartPlan::from_parts(digest.size, plan.part_size, plan.part_count).ok_or_else(
            || {
                Error::UnsupportedPlan(format!(
                    "{} parts of {} bytes for {} bytes",
                    plan.part_count, plan.part_size, digest.size
                ))
            },
        )?;
        // The digests must be of the Worker's parts; a digest taken whole (or for another cut)
        // means reading the file once more.
        let digests = if digest.parts.len() == parts.part_count() as usize {
            digest.parts.clone()
        } else {
            let again = hash_file_parts(path, 1, None).await?;
            if again.sha256 != digest.sha256 || again.parts.len() != parts.part_count() as usize {
                return Err(Error::Invalid(format!(
                    "{} changed while it was uploaded",
                    path.display()
                )));
            }
            again.parts
        };
        let batch = usize::try_from(plan.max_parts_per_request)
            .unwrap_or(multipart::MAX_PARTS_PER_REQUEST)
            .clamp(1, multipart::MAX_PARTS_PER_REQUEST);
        let numbered: Vec<PartDigest> = (1..=parts.part_count())
            .zip(digests)
            .map(|(number, sha256)| PartDigest { number, sha256 })
            .collect();
        let url = self.url(["v1", "uploads", plan.upload_id.as_str(), "parts"]);
        for chunk in numbered.chunks(batch) {
            let request = PartsRequest {
                parts: chunk.to_vec(),
            };
            let urls: PartUrls = self
                .call(
                    Method::POST,
                    url.clone(),
                    Some(&request),
                    Replay::Idempotent,
                )
                .await?;
            let mut sends = futures_util::stream::iter(urls.parts.into_iter().map(|part| {
                let progress = progress.clone();
                async move {
                    if !part.method.eq_ignore_ascii_case("PUT") {
                        return (
                            0,
                            Err(Error::UnsupportedPlan(format!(
                                "method {} for part {}",
                                part.method, part.number
                            ))),
                        );
                    }
                    let (start, end) = match parts.range(part.number) {
                        Ok(r) => r,
                        Err(e) => return (0, Err(Error::UnsupportedPlan(e.to_string()))),
                    };
                    if end - start != part.size {
                        return (
                            0,
                            Err(Error::UnsupportedPlan(format!(
                                "part {} of {} bytes, the plan says {}",
                                part.number,
                                part.size,
                                end - start
                            ))),
                        );
                    }
                    let mut sent = 0;
                    let outcome = self
                        .send_range(
                            path,
                            start,
                            part.size,
                            &part.url,
                            &part.headers,
                            progress,
                            &mut sent,
                        )
                        .await;
                    (sent, outcome)
                }
            }))
            .buffer_unordered(options.part_concurrency.max(1));
            let mut failure = None;
            while let Some((sent, outcome)) = sends.next().await {
                *bytes_sent += sent;
                if let Err(e) = outcome {
                    // The first failure stops the batch; parts in flight are dropped with it.
                    failure = Some(e);
                    break;
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends the file to the plan's signed URL (see [`Client::send_range`]).
    async fn transfer(
        &self,
        path: &Path,
        size: u64,
        plan: &UploadPlan,
        progress: Option<Progress>,
        bytes_sent: &mut u64,
    ) -> Result<()> {
        self.send_range(
            path,
            0,
            size,
            &plan.url,
            &plan.headers,
            progress,
            bytes_sent,
        )
        .await
    }

    /// Sends `len` bytes of the file from `offset` to a signed URL, streaming from disk, with
    /// the URL's headers (all signed) and an exact `content-length`; retried as the shared
    /// rules say. The signed URL is the credential here: the API key is never sent to storage.
    #[allow(clippy::too_many_arguments)]
    async fn send_range(
        &self,
        path: &Path,
        offset: u64,
        len: u64,
        url: &str,
        headers: &BTreeMap<String, String>,
        progress: Option<Progress>,
        bytes_sent: &mut u64,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            let context = || format!("reading {}", path.display());
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::io(context(), e))?;
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| Error::io(context(), e))?;
            let counted = progress.clone();
            let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sent_in_stream = Arc::clone(&sent);
            let stream = ReaderStream::with_capacity(file.take(len), CHUNK).inspect_ok(
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
                .put(url)
                .header(header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(stream));
            for (name, value) in headers {
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

#[cfg(test)]
mod tests {
    use super::{complete_results, hash_file, hash_file_parts, no_route, Transferred};
    use crate::Error;
    use locker_core::api::{CompleteStatus, CompletedBatch};
    use locker_core::client::Source;
    use locker_core::hash::to_hex;
    use sha2::{Digest, Sha256};

    const MIB: u64 = 1024 * 1024;

    fn sha(bytes: &[u8]) -> String {
        to_hex(&Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn parts_are_hashed_in_the_planners_cut() {
        // Two full parts and a 3-byte one; pseudo-random bytes so a boundary off by one byte
        // changes every digest.
        let size = usize::try_from(2 * 8 * MIB + 3).unwrap();
        let mut state = 0x9e37_79b9_u32;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect();
        let path = std::env::temp_dir().join(format!("locker-client-parts-{}", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let whole = hash_file(&path, None).await.unwrap();
        let cut = hash_file_parts(&path, 1, None).await.unwrap();
        let above = hash_file_parts(&path, data.len() as u64 + 1, None)
            .await
            .unwrap();
        std::fs::remove_file(&path).unwrap();

        let part = usize::try_from(8 * MIB).unwrap();
        assert_eq!(whole.sha256, sha(&data));
        assert_eq!(whole.size, data.len() as u64);
        assert!(whole.parts.is_empty());
        assert_eq!(cut.sha256, whole.sha256);
        assert_eq!(
            cut.parts,
            vec![
                sha(&data[..part]),
                sha(&data[part..2 * part]),
                sha(&data[2 * part..])
            ]
        );
        assert!(above.parts.is_empty(), "below the threshold: no parts");
    }

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn batch(results: serde_json::Value) -> CompletedBatch {
        serde_json::from_value(serde_json::json!({ "results": results })).unwrap()
    }

    #[test]
    fn a_batch_complete_answers_each_id_as_the_single_route_would() {
        let answered = batch(serde_json::json!([
            {"status": "complete", "deduplicated": false, "ref": "locker://corp/a.txt",
             "sha256": SHA, "size": 0},
            {"http_status": 422, "error": {"code": "sha256_mismatch",
             "message": "the stored bytes are not the declared ones"}},
            {"status": "verifying", "deduplicated": false, "ref": "locker://corp/b.bin",
             "sha256": SHA, "size": 7},
        ]));
        let got = complete_results(answered, 3).unwrap();
        let first = got[0].as_ref().unwrap();
        assert_eq!(
            (first.status, first.locker_ref.as_str()),
            (CompleteStatus::Complete, "locker://corp/a.txt")
        );
        match &got[1] {
            Err(Error::Refused {
                status,
                code,
                message,
                source_kind,
            }) => {
                assert_eq!(*status, 422);
                assert_eq!(code, "sha256_mismatch");
                assert_eq!(message, "the stored bytes are not the declared ones");
                assert_eq!(*source_kind, Source::Worker);
            }
            other => panic!("not a refusal: {other:?}"),
        }
        assert_eq!(got[1].as_ref().unwrap_err().code(), "sha256_mismatch");
        assert_eq!(
            got[2].as_ref().unwrap().status,
            CompleteStatus::Verifying,
            "a 202 item is an answer, not a refusal"
        );
    }

    #[test]
    fn a_batch_complete_with_another_count_of_results_is_a_bad_answer() {
        let answered = batch(serde_json::json!([
            {"status": "complete", "deduplicated": false, "ref": "locker://corp/a.txt",
             "sha256": SHA, "size": 0},
        ]));
        let e = complete_results(answered, 2).unwrap_err();
        assert!(matches!(e, Error::BadAnswer { .. }), "{e:?}");
        assert!(complete_results(batch(serde_json::json!([])), 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_a_missing_route_sends_the_client_back_to_single_requests() {
        let refusal = |status, code: &str| Error::Refused {
            status,
            code: code.to_owned(),
            message: String::new(),
            source_kind: Source::Worker,
        };
        assert!(no_route(&refusal(404, "route_not_found")));
        assert!(no_route(&refusal(405, "method_not_allowed")));
        // A 404 about an upload, or any other refusal, is the batch's own answer.
        assert!(!no_route(&refusal(404, "not_found")));
        assert!(!no_route(&refusal(400, "invalid_request")));
        assert!(!no_route(&refusal(503, "unavailable")));
    }

    #[test]
    fn a_finished_transfer_keeps_its_timings_and_takes_the_completes() {
        let sent = Transferred {
            upload_id: "up_1".to_owned(),
            bytes_sent: 12,
            reserve_ms: 3,
            transfer_ms: 40,
        };
        let done = serde_json::from_value(serde_json::json!({"status": "complete",
            "deduplicated": false, "ref": "locker://corp/a.txt", "sha256": SHA, "size": 12}))
        .unwrap();
        let stored = sent.finish(done, 150);
        assert_eq!(
            (
                stored.locker_ref.as_str(),
                stored.bytes_sent,
                stored.reserve_ms,
                stored.transfer_ms,
                stored.complete_ms,
                stored.deduplicated
            ),
            ("locker://corp/a.txt", 12, 3, 40, 150, false)
        );
    }
}
