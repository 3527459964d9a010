//! One file's way: hash (see `hashing`) -> reserve -> transfer -> complete, each remote step
//! retried as `locker_core::upload_state` decides, and an expired signed URL replaced by a
//! fresh reservation. [`Inner::transfer`] moves the bytes of one reservation; the steps around it do
//! not depend on how it does.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use std::cell::RefCell;

use gloo_net::http::Method;
use locker_core::api::{
    Abort, Complete, CompleteStatus, Deduplicated, MultipartPlan, ReserveRequest, Reserved,
    UploadInfo, UploadPlan, UploadState,
};
use locker_core::multipart::PartPlan;
use locker_core::resume::{self, Decision, Record};
use locker_core::upload_state::{Action, Event, Phase};
use locker_core::LogicalPath;
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use super::batch::Item;
use super::events::{failure, Tracked};
use super::hashing::{Coming, InParts};
use super::parts::{PartsJob, Remembered};
use super::{memory, Inner};
use crate::error::LockerError;
use crate::js::{check_aborted, obj, sleep};
use crate::slots::Slot;
use crate::transfer::{send, Answer};

/// A step of an upload, boxed: the retry loop is compiled once for all steps instead of once
/// per step, and each step's state machine is not copied into its callers' (module weight).
pub(super) type Pending<'a> = Pin<Box<dyn Future<Output = Result<Answer, LockerError>> + 'a>>;

/// What one `upload()` call is about.
pub(super) struct Job {
    pub(super) file: Blob,
    pub(super) name: String,
    pub(super) content_type: String,
    pub(super) path: Option<String>,
    pub(super) signal: Option<AbortSignal>,
    pub(super) tracked: Rc<Tracked>,
}

/// Where a file ended up: its `locker://` ref, and whether its bytes were stored already.
struct Stored {
    locker_ref: String,
    deduplicated: bool,
}

/// Seconds since the epoch, for the resume rules (which take the clock as an argument).
fn now_s() -> u64 {
    // Whole seconds of a positive clock.
    (js_sys::Date::now() / 1000.0) as u64
}

/// The bytes were stored already: nothing is sent.
fn deduplicated(job: &Job, d: Deduplicated) -> Stored {
    job.tracked.apply(Event::Deduplicated);
    job.tracked
        .events
        .emit("deduplicated", &[("ref", d.locker_ref.clone().into())]);
    Stored {
        locker_ref: d.locker_ref,
        deduplicated: true,
    }
}

/// How long to wait before asking again about an upload the Worker is still verifying: the
/// first wait, doubled after each answer up to the last (the Worker's check runs with its
/// scheduled run, every few minutes, so asking every 2 s for that long would be waste).
const VERIFY_POLL_MS: f64 = 2000.0;
const VERIFY_POLL_MAX_MS: f64 = 30_000.0;

impl Inner {
    /// Uploads `job`'s file; resolves to the `UploadResult` it also tells as `complete`.
    pub(super) async fn run(&self, job: &Job) -> Result<JsValue, LockerError> {
        self.options
            .check(&job.file, &job.name, &job.content_type)?;
        let size = job.file.size();
        let coming = Coming::new(self);
        let mut parts = self.in_parts(job).await;
        let sha256 = self.digest(job, parts.as_mut()).await?;
        job.tracked.apply(Event::Hashed);

        let (path, request) = self.reserve_request(job, &sha256, parts.is_some()).await?;
        drop(coming);
        let stored = self.store(job, &request, parts.as_mut()).await;
        if let Some(key) = parts.as_ref().and_then(|p| p.key.as_deref()) {
            // Stored, refused or cancelled (its reservation released): nothing to resume.
            memory::forget(key).await;
        }
        let stored = stored?;
        let result = obj(&[
            ("ref", stored.locker_ref.into()),
            ("sha256", sha256.into()),
            ("size", size.into()),
            ("deduplicated", stored.deduplicated.into()),
            ("namespace", self.options.namespace.clone().into()),
            ("path", path.as_str().into()),
            ("id", job.tracked.events.id.as_str().into()),
        ]);
        job.tracked
            .events
            .emit("complete", &[("result", result.clone())]);
        Ok(result)
    }

    /// The file's logical path (the one asked, or the path prefix + its name) and the body of
    /// `POST /v1/uploads` for it, encoded.
    async fn reserve_request(
        &self,
        job: &Job,
        sha256: &str,
        in_parts: bool,
    ) -> Result<(LogicalPath, ReserveRequest), LockerError> {
        let token = self.options.credential.token().await?;
        let path = match &job.path {
            Some(p) => LogicalPath::parse(p),
            None => LogicalPath::for_file_name(
                self.options
                    .path_prefix
                    .as_deref()
                    .unwrap_or(&token.path_prefix),
                &job.name,
            ),
        }
        .map_err(|e| LockerError::invalid(e.to_string()))?;
        let request = ReserveRequest {
            namespace: self.options.namespace.clone(),
            path: path.as_str().to_owned(),
            sha256: sha256.to_owned(),
            // A Blob's size is a whole number of bytes.
            size: job.file.size() as u64,
            content_type: job.content_type.clone(),
            filename: Some(job.name.clone()),
            // Whole seconds, checked in `Options::parse`.
            expires_in: self.options.expires_in.map(|s| s as u64),
            // Said either way, so the Worker's threshold never disagrees with the digests the
            // Uploader computed.
            multipart: Some(in_parts),
        };
        Ok((path, request))
    }

    /// Reserves, and unless the bytes are stored already, transfers and completes; again with
    /// a fresh reservation while the machine says a signed URL ran out. An upload in parts
    /// remembered from before a reload goes on with its reservation if the Worker still holds
    /// it.
    async fn store(
        &self,
        job: &Job,
        request: &ReserveRequest,
        mut parts: Option<&mut InParts>,
    ) -> Result<Stored, LockerError> {
        let signal = job.signal.as_ref();
        if let Some(p) = parts.as_deref_mut() {
            if let Some(stored) = self.resume(job, p).await? {
                return Ok(stored);
            }
        }
        let item = Item::reserve(request)?;
        loop {
            let ahead = self.ahead_slots.acquire(signal).await?;
            // Gathered with other files' reservations: those of uploads in parts too (the batch
            // answers multipart plans), so a drop of many files mixed asks few times.
            let answer = self
                .retrying(job, &mut || self.gathered(&self.reserves, &item, signal))
                .await?;
            let plan = match answer.decode::<Reserved>("the reservation")? {
                Reserved::Deduplicated(d) => return Ok(deduplicated(job, d)),
                Reserved::Upload(plan) => plan,
                // `None`: its URLs ran out, the machine released it; reserve afresh.
                Reserved::Multipart(plan) => {
                    match self
                        .store_in_parts(job, &plan, parts.as_deref_mut(), ahead)
                        .await?
                    {
                        Some(stored) => return Ok(stored),
                        None => continue,
                    }
                }
            };
            job.tracked
                .reservation
                .replace(Some(plan.upload_id.clone()));
            job.tracked.apply(Event::Reserved);
            let outcome = match self.transfer(job, &plan, ahead).await {
                Ok(()) => self.complete(job, &plan).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(locker_ref) => {
                    return Ok(Stored {
                        locker_ref,
                        deduplicated: false,
                    })
                }
                // The signed URL ran out (a slow link, a long pause; the Worker's JSON `expired`
                // and a storage server's XML "Request has expired" alike): the machine released
                // the reservation and went back to reserving, for a freshly signed URL.
                Err(_) if job.tracked.phase() == Phase::Reserving => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A transfer slot for a file holding `ahead` (reserved): the file's place ahead is given
    /// up once it has one.
    async fn transfer_slot(&self, job: &Job, ahead: Slot) -> Result<Slot, LockerError> {
        let slot = self.upload_slots.acquire(job.signal.as_ref()).await?;
        drop(ahead);
        Ok(slot)
    }

    /// Sends the file's bytes as `plan` says, retried as a whole: one signed request, under a
    /// transfer slot held only while it is sent.
    async fn transfer(&self, job: &Job, plan: &UploadPlan, ahead: Slot) -> Result<(), LockerError> {
        let signal = job.signal.as_ref();
        let _slot = self.transfer_slot(job, ahead).await?;
        self.retrying(job, &mut || {
            let tracked = job.tracked.clone();
            let sent = send(
                &plan.method,
                &plan.url,
                &plan.headers,
                &job.file,
                signal,
                self.options.reading.stall_ms,
                move |loaded, total| {
                    tracked.events.emit(
                        "upload-progress",
                        &[("loaded", loaded.into()), ("total", total.into())],
                    );
                    tracked.apply(Event::TransferProgress(loaded as u64));
                },
            );
            // No body to decode: the storage server's 2xx says the bytes are taken.
            Box::pin(async move {
                sent.await.map(|()| Answer {
                    status: 200,
                    text: String::new(),
                })
            })
        })
        .await?;
        check_aborted(signal)?;
        job.tracked.apply(Event::Transferred);
        Ok(())
    }

    /// Sends and completes a fresh reservation in parts; `None` when its URLs ran out and the
    /// machine went back to reserving.
    async fn store_in_parts(
        &self,
        job: &Job,
        plan: &MultipartPlan,
        parts: Option<&mut InParts>,
        ahead: Slot,
    ) -> Result<Option<Stored>, LockerError> {
        let Some(p) = parts else {
            return Err(LockerError::invalid(
                "the Worker answered a multipart plan for an upload in one request",
            ));
        };
        match self.fresh_parts(job, plan, p, ahead).await {
            Ok(locker_ref) => Ok(Some(Stored {
                locker_ref,
                deduplicated: false,
            })),
            Err(_) if job.tracked.phase() == Phase::Reserving => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Goes on with a remembered upload in parts if the Worker still holds its reservation:
    /// only the parts it does not list are sent. `None`: nothing to resume (the record is
    /// dropped, and a reservation that will not be used is released), so reserve afresh.
    async fn resume(&self, job: &Job, p: &mut InParts) -> Result<Option<Stored>, LockerError> {
        let (Some(record), Some(key)) = (p.found.take(), p.key.clone()) else {
            return Ok(None);
        };
        let ahead = self.ahead_slots.acquire(job.signal.as_ref()).await?;
        let path = ["/v1/uploads/", &record.upload_id].concat();
        let info = match self
            .api(Method::GET, &path, None, job.signal.as_ref())
            .await
        {
            Ok(answer) => answer.decode::<UploadInfo>("the upload").ok(),
            Err(e) if e.is_aborted() => return Err(e),
            Err(_) => None,
        };
        let decision = info
            .as_ref()
            .map_or(Decision::StartOver, |i| resume::decide(&record, i, now_s()));
        let Decision::Resume {
            plan,
            missing,
            stored,
            stored_bytes,
        } = decision
        else {
            memory::forget(&key).await;
            if info.is_some_and(|i| i.state == UploadState::Pending) {
                self.abandon(&record.upload_id).await;
            }
            return Ok(None);
        };
        job.tracked
            .reservation
            .replace(Some(record.upload_id.clone()));
        job.tracked.apply(Event::ReservedParts {
            total: plan.part_count(),
            stored,
            stored_bytes,
        });
        let upload_id = record.upload_id.clone();
        p.remembered = Some(Remembered {
            key,
            record: RefCell::new(record),
        });
        let parts = PartsJob {
            upload_id: &upload_id,
            plan,
            digests: &p.digests,
            missing,
            stored_bytes,
            remembered: p.remembered.as_ref(),
        };
        match self.send_and_complete(job, &parts, ahead).await {
            Ok(locker_ref) => Ok(Some(Stored {
                locker_ref,
                deduplicated: false,
            })),
            // Its URLs ran out meanwhile: the machine released it; reserve afresh.
            Err(_) if job.tracked.phase() == Phase::Reserving => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends every part of a fresh reservation in parts and completes it, remembering it first
    /// (when `resume` is on) so a reload can go on with it.
    async fn fresh_parts(
        &self,
        job: &Job,
        plan: &MultipartPlan,
        p: &mut InParts,
        ahead: Slot,
    ) -> Result<String, LockerError> {
        job.tracked
            .reservation
            .replace(Some(plan.upload_id.clone()));
        // A Blob's size is a whole number of bytes.
        let size = job.file.size() as u64;
        let Some(part_plan) = PartPlan::from_parts(size, plan.part_size, plan.part_count)
            .filter(|pp| usize::try_from(pp.part_count()).ok() == Some(p.digests.len()))
        else {
            // Refused before any part is sent: ended here (the machine, still reserving, holds
            // no reservation to release), and the reservation nobody will use released.
            let e = LockerError::new(
                crate::error::code::BAD_ANSWER,
                "the Worker's part plan is not the one the file was hashed for",
            );
            job.tracked.apply(Event::Fatal(failure(&e)));
            job.tracked.reservation.take();
            self.abandon(&plan.upload_id).await;
            return Err(e);
        };
        job.tracked.apply(Event::ReservedParts {
            total: plan.part_count,
            stored: 0,
            stored_bytes: 0,
        });
        p.remembered = p.key.as_ref().map(|key| Remembered {
            key: key.clone(),
            record: RefCell::new(Record {
                upload_id: plan.upload_id.clone(),
                sha256: p.sha256.clone(),
                size,
                part_size: part_plan.part_size(),
                part_sha256: p.digests.clone(),
                parts_done: Vec::new(),
                expires_at: plan.expires_at,
            }),
        });
        if let Some(r) = &p.remembered {
            let record = r.record.borrow().clone();
            memory::save(&r.key, &record).await;
        }
        let parts = PartsJob {
            upload_id: &plan.upload_id,
            plan: part_plan,
            digests: &p.digests,
            missing: (1..=plan.part_count).collect(),
            stored_bytes: 0,
            remembered: p.remembered.as_ref(),
        };
        self.send_and_complete(job, &parts, ahead).await
    }

    /// Sends the parts under one transfer slot, and completes once it is given back.
    async fn send_and_complete(
        &self,
        job: &Job,
        parts: &PartsJob<'_>,
        ahead: Slot,
    ) -> Result<String, LockerError> {
        {
            let _slot = self.transfer_slot(job, ahead).await?;
            self.transfer_parts(job, parts).await?;
        }
        self.complete_id(job, parts.upload_id, false).await
    }

    /// Asks the Worker to verify and commit the transferred bytes; gives the file's ref. Gathered
    /// with other files' completes (an upload in one request is never answered `verifying`, so
    /// batching it changes no answer).
    async fn complete(&self, job: &Job, plan: &UploadPlan) -> Result<String, LockerError> {
        self.complete_id(job, &plan.upload_id, true).await
    }

    /// Completes reservation `id`. A large upload in parts may be answered `verifying` (the
    /// Worker checks it on its own): asked again, after a pause, until it is committed.
    /// `gathered`: through `POST /v1/uploads:complete` batches (uploads in parts keep their own
    /// complete).
    async fn complete_id(
        &self,
        job: &Job,
        id: &str,
        gathered: bool,
    ) -> Result<String, LockerError> {
        let signal = job.signal.as_ref();
        let complete = ["/v1/uploads/", id, "/complete"].concat();
        let item = Item::complete(id)?;
        let mut wait = VERIFY_POLL_MS;
        let done = loop {
            // Held per request, not through the pauses between `verifying` answers.
            let slot = self.complete_slots.acquire(signal).await?;
            let done = self
                .retrying(job, &mut || {
                    if gathered {
                        self.gathered(&self.completes, &item, signal)
                    } else {
                        self.api(Method::POST, &complete, None, signal)
                    }
                })
                .await?;
            drop(slot);
            let done = done.decode::<Complete>("the completion")?;
            if done.status == CompleteStatus::Complete {
                break done;
            }
            // The page is told once (`state-change` to "verifying"); asking again says the same.
            job.tracked.apply(Event::Verifying);
            sleep(wait, signal).await?;
            wait = (wait * 2.0).min(VERIFY_POLL_MAX_MS);
        };
        job.tracked.reservation.take();
        job.tracked.apply(Event::Completed);
        Ok(done.locker_ref)
    }

    /// Runs `step` until it succeeds or the machine ends it (`locker_core::upload_state`: a
    /// refusal, retries used up, or an expired URL to renew).
    pub(super) async fn retrying<'a>(
        &self,
        job: &Job,
        step: &mut dyn FnMut() -> Pending<'a>,
    ) -> Result<Answer, LockerError> {
        loop {
            let e = match step().await {
                Err(e) => e,
                ok => return ok,
            };
            match self.step_failed(job, &e).await {
                Some(delay) => sleep(delay, job.signal.as_ref()).await?,
                None => return Err(e),
            }
        }
    }

    /// Tells the machine a step failed; gives the wait before trying it again, or `None` when
    /// the failure ends the step (the upload failed, was cancelled, or needs a new reservation).
    async fn step_failed(&self, job: &Job, e: &LockerError) -> Option<f64> {
        let action = job.tracked.apply(Event::Failed(failure(e)));
        self.act(job, action).await
    }

    /// Ends an upload that failed outside the retried steps (those end it themselves), and
    /// tells the page how it ended. Gives back the error, for JavaScript.
    pub(super) async fn finish_failed(&self, job: &Job, e: LockerError) -> JsValue {
        if !job.tracked.phase().is_final() {
            let action = job.tracked.apply(Event::Fatal(failure(&e)));
            self.act(job, action).await;
        }
        let kind = if e.is_aborted() { "cancel" } else { "error" };
        job.tracked
            .events
            .emit(kind, &[("error", e.clone().into())]);
        e.into()
    }

    /// Does what the machine asked; a retry's wait is given back to the retry loop.
    async fn act(&self, job: &Job, action: Option<Action>) -> Option<f64> {
        match action? {
            Action::Retry {
                step,
                attempt,
                delay_ms,
            } => {
                job.tracked.events.emit(
                    "retry",
                    &[
                        ("step", step.as_str().into()),
                        ("attempt", attempt.into()),
                        ("delay", delay_ms.into()),
                        ("error", job.tracked.error()),
                    ],
                );
                Some(delay_ms)
            }
            Action::Abandon => {
                let id = job.tracked.reservation.take();
                if let Some(id) = id {
                    self.abandon(&id).await;
                }
                None
            }
        }
    }

    /// Releases a reservation that will not be completed (cancelled or refused). Best effort:
    /// an abandoned reservation also expires by itself.
    async fn abandon(&self, id: &str) {
        let path = ["/v1/uploads/", id].concat();
        if let Ok(answer) = self.api(Method::DELETE, &path, None, None).await {
            let _ = answer.decode::<Abort>("the abort");
        }
    }
}
