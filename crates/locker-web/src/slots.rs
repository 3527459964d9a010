//! A counting semaphore for the single-threaded browser: at most `limit` holders at once,
//! waiters served in arrival order, and a waiter that gives up (its signal aborted) never
//! swallows a slot.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::error::LockerError;
use crate::js::{check_aborted, on_abort};

struct Waiter {
    wake: Function,
    gone: Rc<Cell<bool>>,
}

pub(crate) struct Slots {
    limit: usize,
    active: Cell<usize>,
    waiting: RefCell<VecDeque<Waiter>>,
    /// Told after every change of holders or waiters (see [`Slots::on_change`]).
    watcher: RefCell<Option<Rc<dyn Fn()>>>,
}

/// A held slot; dropping it hands the slot to the next waiter.
pub(crate) struct Slot(Rc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Slots {
    pub(crate) fn new(limit: usize) -> Rc<Self> {
        Rc::new(Self {
            limit: limit.max(1),
            active: Cell::new(0),
            waiting: RefCell::default(),
            watcher: RefCell::default(),
        })
    }

    /// Calls `f` after every change of who holds or waits for a slot (a batch gathering items
    /// re-checks whether to send on each). `f` must not acquire or release slots itself.
    pub(crate) fn on_change(&self, f: Rc<dyn Fn()>) {
        self.watcher.replace(Some(f));
    }

    fn changed(&self) {
        let watcher = self.watcher.borrow().clone();
        if let Some(f) = watcher {
            f();
        }
    }

    /// How many may hold a slot at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Slots held now.
    pub(crate) fn active(&self) -> usize {
        self.active.get()
    }

    /// Callers waiting for a slot (those that gave up are not counted).
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
            .borrow()
            .iter()
            .filter(|w| !w.gone.get())
            .count()
    }

    fn release(&self) {
        loop {
            let next = self.waiting.borrow_mut().pop_front();
            match next {
                // The slot passes straight to the waiter: `active` stays the same.
                Some(w) if !w.gone.get() => {
                    let _ = w.wake.call0(&JsValue::NULL);
                    break;
                }
                Some(_) => continue,
                None => {
                    self.active.set(self.active.get().saturating_sub(1));
                    break;
                }
            }
        }
        self.changed();
    }

    pub(crate) async fn acquire(
        self: &Rc<Self>,
        signal: Option<&AbortSignal>,
    ) -> Result<Slot, LockerError> {
        check_aborted(signal)?;
        if self.active.get() < self.limit {
            self.active.set(self.active.get() + 1);
            self.changed();
            return Ok(Slot(self.clone()));
        }
        let gone = Rc::new(Cell::new(false));
        let mut wake = None;
        let mut give_up = None;
        let turn = Promise::new(&mut |resolve, reject| {
            wake = Some(resolve);
            give_up = Some(reject);
        });
        if let Some(wake) = wake {
            self.waiting.borrow_mut().push_back(Waiter {
                wake,
                gone: gone.clone(),
            });
            self.changed();
        }
        let _listener = match (signal, give_up) {
            (Some(s), Some(reject)) => {
                let gone = gone.clone();
                let slots = self.clone();
                Some(on_abort(s, move || {
                    gone.set(true);
                    slots.changed();
                    let _ = reject.call1(&JsValue::NULL, &LockerError::aborted().into());
                }))
            }
            _ => None,
        };
        match JsFuture::from(turn).await {
            Ok(_) => Ok(Slot(self.clone())),
            Err(e) => Err(LockerError::from_rejection(e)),
        }
    }
}
