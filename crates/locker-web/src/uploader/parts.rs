//! The transfer of an upload in parts: signed URLs asked in batches for the parts still
//! missing, `partConcurrency` parts in flight, each part retried on its own
//! (`Machine::part_failed`), progress summed over the parts so it never goes back, and the first
//! part that fails for good stopping the others.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use gloo_net::http::Method;
use locker_core::api::{PartDigest, PartUrl, PartUrls, PartsRequest};
use locker_core::multipart::{PartPlan, MAX_PARTS_PER_REQUEST};
use locker_core::resume::Record;
use locker_core::upload_state::{Event, PartOutcome};
use web_sys::AbortController;

use super::events::failure;
use super::pipeline::Job;
use super::{memory, Inner};
use crate::error::LockerError;
use crate::js::{check_aborted, on_abort, sleep};
use crate::transfer::send;

/// One part worker's run: done, or the error that ended it.
type Running<'a> = Pin<Box<dyn Future<Output = Result<(), LockerError>> + 'a>>;

/// Runs every future to its end, together; the first error that is not a cancellation wins
/// (the others were only stopped because of it).
struct All<'a> {
    running: Vec<Option<Running<'a>>>,
    error: Option<LockerError>,
}

impl Future for All<'_> {
    type Output = Result<(), LockerError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for slot in &mut this.running {
            let Some(future) = slot.as_mut() else {
                continue;
            };
            if let Poll::Ready(outcome) = future.as_mut().poll(cx) {
                *slot = None;
                if let Err(e) = outcome {
                    if this.error.as_ref().is_none_or(LockerError::is_aborted) {
                        this.error = Some(e);
                    }
                }
            }
        }
        if this.running.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(this.error.take().map_or(Ok(()), Err))
    }
}

/// A remembered upload, updated as parts are stored.
pub(super) struct Remembered {
    pub(super) key: String,
    pub(super) record: RefCell<Record>,
}

/// What one transfer in parts is about.
pub(super) struct PartsJob<'a> {
    pub(super) upload_id: &'a str,
    pub(super) plan: PartPlan,
    /// The digest of each part, part `n` at `n - 1`.
    pub(super) digests: &'a [String],
    pub(super) missing: Vec<u32>,
    /// Bytes of the parts stored before this transfer began.
    pub(super) stored_bytes: u64,
    pub(super) remembered: Option<&'a Remembered>,
}

/// The shared state of the part workers of one transfer.
struct Shared<'a> {
    job: &'a Job,
    parts: &'a PartsJob<'a>,
    queue: RefCell<VecDeque<PartUrl>>,
    /// The most bytes each part in flight has reported (a retried part starts again from 0,
    /// which must not show).
    sent: Rc<RefCell<BTreeMap<u32, u64>>>,
    /// Stops every part: the caller's signal, or a part that failed for good.
    stop: AbortController,
}

impl Inner {
    /// Sends `parts.missing`; the upload stays in `Transferring` until every part is stored.
    pub(super) async fn transfer_parts(
        &self,
        job: &Job,
        parts: &PartsJob<'_>,
    ) -> Result<(), LockerError> {
        let stop = AbortController::new()
            .map_err(|e| LockerError::from_js("could not start the transfer", e))?;
        let _follow = job.signal.as_ref().map(|s| {
            let stop = stop.clone();
            on_abort(s, move || stop.abort())
        });
        let shared = Shared {
            job,
            parts,
            queue: RefCell::default(),
            sent: Rc::default(),
            stop,
        };
        let batch = (4 * self.options.parts.concurrency).clamp(1, MAX_PARTS_PER_REQUEST);
        for numbers in parts.missing.chunks(batch) {
            let urls = self.part_urls(&shared, numbers, true).await?;
            shared.queue.borrow_mut().extend(urls);
            let workers = (0..self.options.parts.concurrency.min(numbers.len()))
                .map(|_| Some(Box::pin(self.part_worker(&shared)) as Running<'_>))
                .collect();
            All {
                running: workers,
                error: None,
            }
            .await?;
        }
        check_aborted(job.signal.as_ref())?;
        job.tracked.apply(Event::Transferred);
        Ok(())
    }

    /// Signed URLs for `numbers`, with their remembered digests. `retried`: through the
    /// machine's retries of the transfer step (a batch); a single part's fresh URL is not,
    /// its part counts the try.
    async fn part_urls(
        &self,
        shared: &Shared<'_>,
        numbers: &[u32],
        retried: bool,
    ) -> Result<Vec<PartUrl>, LockerError> {
        let request = PartsRequest {
            parts: numbers
                .iter()
                .map(|&number| PartDigest {
                    number,
                    sha256: (number as usize)
                        .checked_sub(1)
                        .and_then(|i| shared.parts.digests.get(i))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect(),
        };
        let body =
            serde_json::to_string(&request).map_err(|e| LockerError::invalid(e.to_string()))?;
        let path = ["/v1/uploads/", shared.parts.upload_id, "/parts"].concat();
        let signal = Some(shared.stop.signal());
        let answer = if retried {
            self.retrying(shared.job, &mut || {
                self.api(Method::POST, &path, Some(&body), shared.job.signal.as_ref())
            })
            .await?
        } else {
            self.api(Method::POST, &path, Some(&body), signal.as_ref())
                .await?
        };
        Ok(answer.decode::<PartUrls>("the part URLs")?.parts)
    }

    /// Takes parts off the queue and sends them until it is empty or one fails for good (which
    /// stops the others).
    async fn part_worker(&self, shared: &Shared<'_>) -> Result<(), LockerError> {
        loop {
            let Some(url) = shared.queue.borrow_mut().pop_front() else {
                return Ok(());
            };
            if let Err(e) = self.send_part(shared, url).await {
                shared.stop.abort();
                return Err(e);
            }
        }
    }

    /// Sends one part, again while `Machine::part_failed` says so.
    async fn send_part(&self, shared: &Shared<'_>, mut url: PartUrl) -> Result<(), LockerError> {
        let job = shared.job;
        let signal = shared.stop.signal();
        let number = url.number;
        let (start, end) = shared
            .parts
            .plan
            .range(number)
            .map_err(|e| LockerError::invalid(e.to_string()))?;
        let body = job
            .file
            // Byte offsets of a Blob: exact in f64.
            .slice_with_f64_and_f64(start as f64, end as f64)
            .map_err(|e| LockerError::from_js("could not read the file", e))?;
        let mut attempt = 0;
        loop {
            let sent = send(
                &url.method,
                &url.url,
                &url.headers,
                &body,
                Some(&signal),
                self.options.reading.stall_ms,
                self.part_progress(shared, number),
            )
            .await;
            let e = match sent {
                Ok(()) => break,
                Err(e) => e,
            };
            check_aborted(job.signal.as_ref())?;
            attempt += 1;
            let outcome = job.tracked.part_failed(attempt, &e);
            if outcome != PartOutcome::GiveUp {
                job.tracked.apply(Event::PartRetry(failure(&e)));
            }
            match outcome {
                PartOutcome::GiveUp => return Err(e),
                PartOutcome::Retry { delay_ms } => {
                    job.tracked.emit_retry(attempt, delay_ms);
                    sleep(delay_ms, Some(&signal)).await?;
                }
                PartOutcome::FreshUrl => {
                    job.tracked.emit_retry(attempt, 0.0);
                    let fresh = self.part_urls(shared, &[number], false).await?;
                    url = fresh
                        .into_iter()
                        .next()
                        .ok_or_else(|| LockerError::invalid("the Worker signed no URL"))?;
                }
            }
        }
        self.part_stored(shared, number, end - start).await;
        Ok(())
    }

    /// Counts part `number` (`len` bytes) as stored, and notes it in the upload's record.
    async fn part_stored(&self, shared: &Shared<'_>, number: u32, len: u64) {
        shared.sent.borrow_mut().insert(number, len);
        self.report_sent(shared);
        shared.job.tracked.apply(Event::PartStored);
        if let Some(r) = shared.parts.remembered {
            let record = {
                let mut record = r.record.borrow_mut();
                record.parts_done.push(number);
                record.clone()
            };
            memory::save(&r.key, &record).await;
        }
    }

    /// The progress callback of one part's transfer.
    fn part_progress(&self, shared: &Shared<'_>, number: u32) -> impl Fn(f64, f64) + 'static {
        let sent = shared.sent.clone();
        let tracked = shared.job.tracked.clone();
        let base = shared.parts.stored_bytes;
        let size = shared.parts.plan.size();
        move |loaded, _| {
            {
                let mut sent = sent.borrow_mut();
                let best = sent.entry(number).or_default();
                // Whole bytes.
                *best = (*best).max(loaded as u64);
            }
            let total = base + sent.borrow().values().sum::<u64>();
            tracked.report_transfer(total, size);
        }
    }

    fn report_sent(&self, shared: &Shared<'_>) {
        let total = shared.parts.stored_bytes + shared.sent.borrow().values().sum::<u64>();
        shared
            .job
            .tracked
            .report_transfer(total, shared.parts.plan.size());
    }
}
