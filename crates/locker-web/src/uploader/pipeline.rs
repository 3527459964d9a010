//! One file's way: hash -> reserve -> transfer -> complete, each remote step retried as
//! `locker_core::upload_state` decides, and an expired signed URL replaced by a fresh
//! reservation. [`Inner::transfer`] moves the bytes of one reservation; the steps around it do
//! not depend on how it does.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use gloo_net::http::Method;
use locker_core::api::{Abort, Complete, ReserveRequest, Reserved, UploadPlan};
use locker_core::upload_state::{Action, Event, Phase};
use locker_core::LogicalPath;
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use super::events::{failure, Tracked};
use super::Inner;
use crate::error::LockerError;
use crate::hash_worker::hash_in_worker;
use crate::js::{check_aborted, obj, sleep};
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

impl Inner {
    /// Uploads `job`'s file; resolves to the `UploadResult` it also tells as `complete`.
    pub(super) async fn run(&self, job: &Job) -> Result<JsValue, LockerError> {
        let signal = job.signal.as_ref();
        self.options
            .check(&job.file, &job.name, &job.content_type)?;
        let size = job.file.size();
        // Hashing stays in this function: as an async function of its own it costs the module
        // about 200 bytes (gzip) of state machine.
        let sha256 = {
            let _slot = self.hash_slots.acquire(signal).await?;
            job.tracked.apply(Event::Start);
            let tracked = job.tracked.clone();
            let progress = move |bytes: f64| {
                tracked.events.emit(
                    "hash-progress",
                    &[("loaded", bytes.into()), ("total", size.into())],
                );
                tracked.apply(Event::HashProgress(bytes as u64));
            };
            hash_in_worker(&job.file, self.options.reading, signal, progress).await?
        };
        job.tracked.apply(Event::Hashed);

        let _slot = self.upload_slots.acquire(signal).await?;
        let (path, request) = self.reserve_request(job, &sha256).await?;
        let stored = self.store(job, &request).await?;
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
    ) -> Result<(LogicalPath, String), LockerError> {
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
            // One request, as before multipart existed, until the Uploader sends parts.
            multipart: Some(false),
        };
        let request =
            serde_json::to_string(&request).map_err(|e| LockerError::invalid(e.to_string()))?;
        Ok((path, request))
    }

    /// Reserves, and unless the bytes are stored already, transfers and completes; again with
    /// a fresh reservation while the machine says a signed URL ran out.
    async fn store(&self, job: &Job, request: &str) -> Result<Stored, LockerError> {
        let signal = job.signal.as_ref();
        loop {
            let answer = self
                .retrying(job, &mut || {
                    self.api(Method::POST, "/v1/uploads", Some(request), signal)
                })
                .await?;
            let plan =
                match answer.decode::<Reserved>("the reservation")? {
                    Reserved::Deduplicated(d) => {
                        job.tracked.apply(Event::Deduplicated);
                        job.tracked
                            .events
                            .emit("deduplicated", &[("ref", d.locker_ref.clone().into())]);
                        return Ok(Stored {
                            locker_ref: d.locker_ref,
                            deduplicated: true,
                        });
                    }
                    Reserved::Upload(plan) => plan,
                    Reserved::Multipart(_) => return Err(LockerError::invalid(
                        "the Worker answered a multipart plan, which this Uploader does not send",
                    )),
                };
            job.tracked
                .reservation
                .replace(Some(plan.upload_id.clone()));
            job.tracked.apply(Event::Reserved);
            let outcome = match self.transfer(job, &plan).await {
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

    /// Sends the file's bytes as `plan` says, retried as a whole: one signed request.
    async fn transfer(&self, job: &Job, plan: &UploadPlan) -> Result<(), LockerError> {
        let signal = job.signal.as_ref();
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

    /// Asks the Worker to verify and commit the transferred bytes; gives the file's ref.
    async fn complete(&self, job: &Job, plan: &UploadPlan) -> Result<String, LockerError> {
        let signal = job.signal.as_ref();
        let complete = ["/v1/uploads/", &plan.upload_id, "/complete"].concat();
        let done = self
            .retrying(job, &mut || self.api(Method::POST, &complete, None, signal))
            .await?;
        let done = done.decode::<Complete>("the completion")?;
        job.tracked.reservation.take();
        job.tracked.apply(Event::Completed);
        Ok(done.locker_ref)
    }

    /// Runs `step` until it succeeds or the machine ends it (`locker_core::upload_state`: a
    /// refusal, retries used up, or an expired URL to renew).
    async fn retrying<'a>(
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
