//! `Uploader`: hash in a Web Worker, ask the Worker, skip the transfer on a dedup hit, otherwise
//! send the bytes to the signed URL and complete. Retries what is worth retrying, and runs
//! several files at once with hashing of the next overlapping the upload of the current one.
//!
//! This module is the JavaScript class; [`options`] reads its options, [`credential`] holds the
//! token, [`pipeline`] takes one file through its steps, [`events`] tells the page about it, and
//! [`types`] declares all of it for TypeScript.

mod batch;
mod credential;
mod events;
mod hashing;
mod memory;
mod options;
mod parts;
mod pipeline;
mod remembered;
mod types;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use js_sys::{Function, Promise};
use locker_core::upload_state::{Event, Phase, Upload};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use web_sys::{AbortSignal, Blob, EventTarget, File};

use crate::error::LockerError;
use crate::js::{get, get_string};
use crate::slots::Slots;
use batch::Gather;
use events::{EventsFor, Tracked};
use options::{content_type_of, Concurrency, Options};
use pipeline::Job;

struct Inner {
    options: Options,
    events: EventTarget,
    hash_slots: Rc<Slots>,
    /// Files reserving, or reserved and waiting for a transfer slot. Bounds the reserves in
    /// flight (hundreds of files dropped at once do not all ask at once) and how far
    /// reservations run ahead of the transfers (their signed URLs expire while they wait).
    ahead_slots: Rc<Slots>,
    /// Transfers: the only step `concurrency` counts, as Uppy counts it. Reserve and complete
    /// run outside it, so a slot goes to the next file the moment a file's bytes are sent.
    upload_slots: Rc<Slots>,
    /// Completes in flight.
    complete_slots: Rc<Slots>,
    /// Files on their way to reserving (hashing, or waiting to): see `pipeline::Coming`.
    to_reserve: Cell<usize>,
    /// Reservations gathered into `POST /v1/uploads:batch` requests.
    reserves: Rc<Gather>,
    /// Completes of uploads in one request gathered into `POST /v1/uploads:complete` requests.
    completes: Rc<Gather>,
    uploads: Uploads,
}

/// Uploads by id: running ones (an id in use is refused), and those that ended failed or
/// cancelled (the same id again restarts them from there). Stored ones are forgotten.
type Uploads = Rc<RefCell<BTreeMap<String, Upload>>>;

/// Files that may be reserving (or reserved, waiting for a transfer slot) and completing at
/// once, at least: what one batch request can hold, so that a drop of many small files is
/// reserved and completed many to a request. Their signed URLs may run out before a large
/// file's turn comes; they are renewed then, at a request each.
const AHEAD: usize = locker_core::api::BATCH_MAX;

thread_local! {
    /// Ids handed out when the caller gives none: unique on the page, across Uploaders.
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

/// Uploads files to a locker Worker. See the TypeScript types for the options and events.
#[wasm_bindgen]
pub struct Uploader {
    inner: Rc<Inner>,
}

impl Inner {
    /// Whether a lead with `n` items gathered, the oldest queued `waited_ms` ago, should send
    /// now (`locker_core::gather::send_now`, with what this Uploader's slots show).
    fn batch_ready(&self, kind: batch::Kind, n: usize, waited_ms: f64) -> bool {
        let transfers = &self.upload_slots;
        let pipeline = locker_core::gather::Pipeline {
            transfer_slots: transfers.limit(),
            transferring: transfers.active(),
            reserved_waiting: transfers.waiting(),
            to_reserve: self.to_reserve.get() + self.ahead_slots.waiting(),
        };
        locker_core::gather::send_now(kind, n, waited_ms, pipeline)
    }

    /// The job of one `upload()` call, its upload registered under its id (restarted if that
    /// id failed or was cancelled before); refused while an upload with that id is running.
    fn job(&self, file: Blob, options: &JsValue) -> Result<Job, LockerError> {
        let name = file
            .dyn_ref::<File>()
            .map(File::name)
            .or_else(|| get_string(options, "filename"))
            .unwrap_or_else(|| "blob".into());
        let id = get_string(options, "id").unwrap_or_else(|| {
            let n = NEXT_ID.with(|n| n.replace(n.get().wrapping_add(1)));
            ["upload-", &n.to_string()].concat()
        });
        let before = self.uploads.borrow().get(&id).cloned();
        if before.as_ref().is_some_and(|b| !b.phase.is_final()) {
            return Err(LockerError::invalid(
                ["an upload with the id ", &id, " is running"].concat(),
            ));
        }
        let events = EventsFor {
            target: self.events.clone(),
            file: file.clone(),
            id,
        };
        // A Blob's size is a whole number of bytes.
        let size = file.size() as u64;
        let tracked = Rc::new(Tracked::new(
            events,
            self.options.retry,
            size,
            self.uploads.clone(),
        ));
        tracked.begin(before);
        Ok(Job {
            content_type: content_type_of(&file),
            file,
            name,
            path: get_string(options, "path"),
            signal: get(options, "signal").dyn_into::<AbortSignal>().ok(),
            tracked,
        })
    }
}

impl Inner {
    /// Runs `job`; once more if a digest remembered for its file (`rememberDigests`) may have
    /// been wrong: its bytes were refused as not those of the digest. The fingerprint is
    /// forgotten first, so the second run hashes the file for real.
    async fn run_checked(&self, job: &Job) -> Result<JsValue, LockerError> {
        let e = match self.run(job).await {
            Err(e) if self.options.remember_digests && remembered::wrong_bytes(&e) => e,
            outcome => return outcome,
        };
        let Some(key) = remembered::fingerprint(&job.file) else {
            return Err(e);
        };
        remembered::forget(&key).await;
        // A refusal ends the run in the machine (failed, its reservation released); the page
        // sees the upload start over. Anything else is left to end as it is.
        if job.tracked.phase() != Phase::Failed {
            return Err(e);
        }
        job.tracked.apply(Event::Restart);
        self.run(job).await
    }
}

#[wasm_bindgen]
impl Uploader {
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "UploaderOptions")] options: JsValue,
    ) -> Result<Uploader, JsValue> {
        let parsed = Options::parse(&options)?;
        let concurrency = Concurrency::parse(&options)?;
        let events = EventTarget::new()
            .map_err(|e| LockerError::from_js("could not create the event target", e))?;
        if parsed.remember_digests {
            wasm_bindgen_futures::spawn_local(remembered::prune());
        }
        if parsed.parts.resume {
            // Records of uploads left by closing a page and never picked again.
            let now_s = (js_sys::Date::now() / 1000.0) as u64;
            wasm_bindgen_futures::spawn_local(memory::sweep(now_s));
        }
        let reserves = Rc::new(Gather::reserves());
        let completes = Rc::new(Gather::completes());
        let ahead_slots = Slots::new(concurrency.uploads.saturating_mul(2).max(AHEAD));
        let upload_slots = Slots::new(concurrency.uploads);
        // A lead holding back a batch decides again whenever what it waits on may have changed
        // (and when a file reaches reserving: `pipeline::Coming`).
        ahead_slots.on_change({
            let reserves = reserves.clone();
            Rc::new(move || reserves.nudge())
        });
        upload_slots.on_change({
            let (reserves, completes) = (reserves.clone(), completes.clone());
            Rc::new(move || {
                reserves.nudge();
                completes.nudge();
            })
        });
        Ok(Uploader {
            inner: Rc::new(Inner {
                options: parsed,
                events,
                hash_slots: Slots::new(concurrency.hashes),
                ahead_slots,
                upload_slots,
                complete_slots: Slots::new(concurrency.uploads.saturating_mul(2).max(AHEAD)),
                uploads: Uploads::default(),
                to_reserve: Cell::new(0),
                reserves,
                completes,
            }),
        })
    }

    /// Hashes and uploads one file (or Blob). Resolves to an `UploadResult`; rejects with a
    /// `LockerError` (`code`, `status`, `retryable`).
    #[wasm_bindgen(unchecked_return_type = "Promise<UploadResult>")]
    pub fn upload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Blob | File")] file: Blob,
        #[wasm_bindgen(unchecked_optional_param_type = "UploadOptions")] options: Option<
            js_sys::Object,
        >,
    ) -> Promise {
        let options = JsValue::from(options.unwrap_or_default());
        let inner = self.inner.clone();
        let job = match inner.job(file, &options) {
            Ok(job) => job,
            Err(e) => return Promise::reject(&e.into()),
        };
        future_to_promise(async move {
            match inner.run_checked(&job).await {
                Ok(result) => Ok(result),
                Err(e) => Err(inner.finish_failed(&job, e).await),
            }
        })
    }

    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof UploaderEventMap")] kind: &str,
        #[wasm_bindgen(
            unchecked_param_type = "(event: UploaderEventMap[keyof UploaderEventMap]) => void"
        )]
        listener: &Function,
    ) -> Result<(), JsValue> {
        self.inner
            .events
            .add_event_listener_with_callback(kind, listener)
    }

    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(unchecked_param_type = "keyof UploaderEventMap")] kind: &str,
        #[wasm_bindgen(
            unchecked_param_type = "(event: UploaderEventMap[keyof UploaderEventMap]) => void"
        )]
        listener: &Function,
    ) -> Result<(), JsValue> {
        self.inner
            .events
            .remove_event_listener_with_callback(kind, listener)
    }
}
