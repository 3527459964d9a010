//! What the page is told about an upload: its state in `locker_core::upload_state`, every
//! legal transition of it as `state-change`, the other events of the `UploaderEventMap`, and
//! the JavaScript objects they carry.

use std::cell::RefCell;

use locker_core::client::RetryPolicy;
use locker_core::upload_state::{Action, Event, Failure, Machine, PartOutcome, Phase, Upload};
use wasm_bindgen::prelude::*;
use web_sys::{Blob, CustomEvent, CustomEventInit, EventTarget};

use super::Uploads;
use crate::error::LockerError;
use crate::js::obj;

/// How often an expired signed URL is replaced by a fresh reservation before giving up.
const MAX_RESERVATIONS: u32 = 3;

/// Emits events about one file from a `'static` callback.
#[derive(Clone)]
pub(super) struct EventsFor {
    pub(super) target: EventTarget,
    pub(super) file: Blob,
    pub(super) id: String,
}

impl EventsFor {
    /// `state-change`: where the upload is now and was before (`null` for a new one).
    pub(super) fn emit_state(&self, previous: Option<Phase>, s: &Upload) {
        let (loaded, total) = s.progress();
        self.emit(
            "state-change",
            &[
                ("state", s.phase.as_str().into()),
                (
                    "previous",
                    previous.map_or(JsValue::NULL, |p| p.as_str().into()),
                ),
                // Byte counts of a Blob: exact in f64.
                ("loaded", (loaded as f64).into()),
                ("total", (total as f64).into()),
                ("attempt", s.attempt.into()),
                ("error", error_of(s)),
                (
                    "parts",
                    s.parts.map_or(JsValue::NULL, |p| {
                        obj(&[
                            ("done", p.done.into()),
                            ("total", p.total.into()),
                            ("resumed", p.resumed.into()),
                        ])
                    }),
                ),
            ],
        );
    }

    pub(super) fn emit(&self, kind: &str, props: &[(&str, JsValue)]) {
        let detail = obj(props);
        let _ = js_sys::Reflect::set(&detail, &"file".into(), &self.file);
        let _ = js_sys::Reflect::set(&detail, &"id".into(), &self.id.as_str().into());
        let init = CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(event) = CustomEvent::new_with_event_init_dict(kind, &init) {
            let _ = self.target.dispatch_event(&event);
        }
    }
}

/// One upload's state in `locker_core::upload_state`, shared with the callbacks that report
/// its progress. Every legal transition is told to the page as `state-change`.
pub(super) struct Tracked {
    pub(super) events: EventsFor,
    machine: Machine,
    state: RefCell<Upload>,
    /// The reservation the Worker holds for it, released on [`Action::Abandon`].
    pub(super) reservation: RefCell<Option<String>>,
    uploads: Uploads,
}

impl Tracked {
    /// A new upload of `size` bytes, registered in `uploads` under its id.
    pub(super) fn new(events: EventsFor, retry: RetryPolicy, size: u64, uploads: Uploads) -> Self {
        uploads
            .borrow_mut()
            .insert(events.id.clone(), Upload::new(size));
        Self {
            events,
            machine: Machine {
                retry,
                max_reservations: MAX_RESERVATIONS,
            },
            state: RefCell::new(Upload::new(size)),
            reservation: RefCell::default(),
            uploads,
        }
    }

    /// Tells the page the upload is there: new, or (`before` failed or was cancelled, the same
    /// id given again) the same upload restarted from where it ended.
    pub(super) fn begin(&self, before: Option<Upload>) {
        match before {
            Some(ended) if matches!(ended.phase, Phase::Failed | Phase::Cancelled) => {
                let size = self.state.borrow().size;
                self.state.replace(Upload { size, ..ended });
                self.apply(Event::Restart);
            }
            _ => self.events.emit_state(None, &self.state.borrow()),
        }
    }

    /// Applies `event`. A refused one (a progress report arriving after its phase ended)
    /// changes nothing and is not told.
    pub(super) fn apply(&self, event: Event) -> Option<Action> {
        let previous = self.state.borrow().clone();
        let (next, action) = self
            .machine
            .transition(&previous, event, js_sys::Math::random())
            .ok()?;
        if next.phase != previous.phase {
            let mut uploads = self.uploads.borrow_mut();
            let id = self.events.id.clone();
            match next.phase {
                Phase::Stored | Phase::Deduplicated => uploads.remove(&id),
                _ => uploads.insert(id, next.clone()),
            };
        }
        self.state.replace(next.clone());
        self.events.emit_state(Some(previous.phase), &next);
        action
    }

    /// What to do about a part that failed on its `attempt`-th try.
    pub(super) fn part_failed(&self, attempt: u32, e: &LockerError) -> PartOutcome {
        self.machine
            .part_failed(attempt, &failure(e), js_sys::Math::random())
    }

    /// The `retry` event of a part's transfer.
    pub(super) fn emit_retry(&self, attempt: u32, delay_ms: f64) {
        self.events.emit(
            "retry",
            &[
                ("step", "transfer".into()),
                ("attempt", attempt.into()),
                ("delay", delay_ms.into()),
                ("error", self.error()),
            ],
        );
    }

    /// `upload-progress` and the machine's transfer progress: `loaded` of `total` bytes sent.
    pub(super) fn report_transfer(&self, loaded: u64, total: u64) {
        // Byte counts of a Blob: exact in f64.
        self.events.emit(
            "upload-progress",
            &[
                ("loaded", (loaded as f64).into()),
                ("total", (total as f64).into()),
            ],
        );
        self.apply(Event::TransferProgress(loaded));
    }

    pub(super) fn phase(&self) -> Phase {
        self.state.borrow().phase
    }

    /// The failure the machine last saw, as a `LockerError` for JavaScript (`null` if none).
    pub(super) fn error(&self) -> JsValue {
        error_of(&self.state.borrow())
    }
}

fn error_of(s: &Upload) -> JsValue {
    s.error.as_ref().map_or(JsValue::NULL, |f| {
        LockerError {
            code: f.code.clone(),
            message: f.message.clone(),
            status: f.status,
        }
        .into()
    })
}

/// The machine's view of an error.
pub(super) fn failure(e: &LockerError) -> Failure {
    Failure {
        status: e.status,
        code: e.code.clone(),
        message: e.message.clone(),
    }
}
