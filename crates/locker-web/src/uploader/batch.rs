//! Reserves and completes of many files gathered into batch requests (`POST
//! /v1/uploads:batch`, `POST /v1/uploads:complete`), Nagle-style and without timers: when no
//! request of a kind is in flight a file's item goes at once, by the single route (the first
//! file waits for nothing, and one file alone makes the requests it always made); while one is
//! in flight, the next files' items gather and the first of them sends them all (up to
//! `BATCH_MAX`, in a batch request if more than one) when it returns.
//!
//! Each item comes back to its file as the [`Answer`] or the refusal the single route would have
//! given it, so the file's retry loop (`Inner::retrying`, with `locker_core::upload_state`),
//! token renewal and dedup are the single route's: a batch request that fails as a whole fails
//! every item with that error, and each file retries its own item, in a later batch. A Worker
//! without the route (404/405) is asked one item at a time from then on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use gloo_net::http::Method;
use locker_core::api::{BatchRefusal, CompleteBatch, ReserveBatch, ReserveRequest, BATCH_MAX};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use super::pipeline::Pending;
use super::Inner;
use crate::error::{code, LockerError};
use crate::js::{check_aborted, deferred, on_abort, wait, Finish};
use crate::transfer::{refusal, Answer};

/// One file's answer, as the single route would have given it.
type Outcome = Result<Answer, LockerError>;

/// An item of a batch route, and how it goes by the single route.
pub(super) trait Item: Clone + 'static {
    /// The batch route.
    const ROUTE: &'static str;
    /// The batch request's body for `items`.
    fn batch(items: Vec<Self>) -> Result<String, LockerError>;
    /// The single route's path and body.
    fn single(&self) -> Result<(String, Option<String>), LockerError>;
}

/// The `up_...` id of a reservation to complete.
#[derive(Clone)]
pub(super) struct CompleteId(pub(super) String);

fn encode<T: Serialize>(value: &T) -> Result<String, LockerError> {
    serde_json::to_string(value).map_err(|e| LockerError::invalid(e.to_string()))
}

/// The answer of either batch route (`locker_core::api::ReservedBatch`, `CompletedBatch`), its results kept
/// as their JSON: each is read as `BatchRefusal` or, failing that, handed to its file as the
/// single route's answer body, which the file decodes as it always did (`Reserved`,
/// `Complete`). That is the order the untagged `BatchResult` / `CompleteResult` read them in;
/// decoding those enums here instead would compile serde's buffered untagged path for every
/// answer type again, which costs the module about 50 KB.
#[derive(Deserialize)]
struct Results<'a> {
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
}

/// The batch answer split into one outcome per item, in the items' order: a refused item as the
/// error the single route's answer would have been read as (same code, status and so retry
/// behaviour), an answered one as its body (the status is the batch's: the files read theirs
/// from the body).
fn split(answer: &Answer) -> Result<Vec<Outcome>, LockerError> {
    // Borrowed from the answer's text, so not through `Answer::decode` (owned types only).
    let batch: Results = serde_json::from_str(&answer.text).map_err(|e| {
        LockerError::new(
            code::BAD_ANSWER,
            ["unexpected answer to the batch request: ", &e.to_string()].concat(),
        )
        .with_status(answer.status)
    })?;
    Ok(batch
        .results
        .iter()
        .map(
            |raw| match serde_json::from_str::<BatchRefusal>(raw.get()) {
                // Its `error` is read as the single route's `{"error": ...}` body is.
                Ok(r) => Err(refusal(r.http_status, raw.get())),
                Err(_) => Ok(Answer {
                    status: answer.status,
                    text: raw.get().to_owned(),
                }),
            },
        )
        .collect())
}

impl Item for ReserveRequest {
    const ROUTE: &'static str = "/v1/uploads:batch";

    fn batch(uploads: Vec<Self>) -> Result<String, LockerError> {
        encode(&ReserveBatch { uploads })
    }

    fn single(&self) -> Result<(String, Option<String>), LockerError> {
        Ok(("/v1/uploads".into(), Some(encode(self)?)))
    }
}

impl Item for CompleteId {
    const ROUTE: &'static str = "/v1/uploads:complete";

    fn batch(ids: Vec<Self>) -> Result<String, LockerError> {
        encode(&CompleteBatch {
            upload_ids: ids.into_iter().map(|i| i.0).collect(),
        })
    }

    fn single(&self) -> Result<(String, Option<String>), LockerError> {
        Ok((["/v1/uploads/", &self.0, "/complete"].concat(), None))
    }
}

/// What a waiting item was woken for.
enum Turn {
    /// Not yet: woken by its signal's abort.
    Waiting,
    /// Its batch came back with this.
    Done(Outcome),
    /// The request in flight came back and this item is the first queued: it sends the next.
    Lead,
    /// The Worker has no batch route: the item goes by the single route.
    Single,
}

struct Queued<T> {
    item: T,
    turn: Rc<RefCell<Turn>>,
    wake: Finish,
}

/// The items of one kind waiting for the request in flight to come back.
pub(super) struct Gather<T> {
    queue: RefCell<VecDeque<Queued<T>>>,
    flying: Cell<bool>,
    /// The Worker answered 404/405 to the batch route.
    absent: Cell<bool>,
}

impl<T> Default for Gather<T> {
    fn default() -> Self {
        Self {
            queue: RefCell::default(),
            flying: Cell::new(false),
            absent: Cell::new(false),
        }
    }
}

impl<T: Item> Gather<T> {
    /// Gives the right to send to the first queued item, or notes nothing is in flight. Once the
    /// route is known absent, every queued item goes by the single route instead (no second
    /// batch is sent to learn it again).
    fn hand_over(&self) {
        if self.absent.get() {
            let queued: Vec<Queued<T>> = self.queue.borrow_mut().drain(..).collect();
            for q in queued {
                q.turn.replace(Turn::Single);
                q.wake.call(Ok(JsValue::NULL));
            }
            self.flying.set(false);
            return;
        }
        let next = self.queue.borrow_mut().pop_front();
        match next {
            Some(q) => {
                q.turn.replace(Turn::Lead);
                q.wake.call(Ok(JsValue::NULL));
            }
            None => self.flying.set(false),
        }
    }
}

impl Inner {
    /// `item`'s answer through `gather`'s batches; boxed like every retried step.
    pub(super) fn gathered<'a, T: Item>(
        &'a self,
        gather: &'a Gather<T>,
        item: &T,
        signal: Option<&'a AbortSignal>,
    ) -> Pending<'a> {
        let item = item.clone();
        Box::pin(async move {
            if gather.absent.get() {
                return self.single(&item, signal).await;
            }
            if !gather.flying.replace(true) {
                return self.lead(gather, item, signal).await;
            }
            let turn = Rc::new(RefCell::new(Turn::Waiting));
            let (promise, wake) = deferred();
            gather.queue.borrow_mut().push_back(Queued {
                item: item.clone(),
                turn: turn.clone(),
                wake: wake.clone(),
            });
            let _listener = signal.map(|s| on_abort(s, move || wake.call(Ok(JsValue::NULL))));
            let _ = wait(promise).await;
            let woken = turn.replace(Turn::Waiting);
            match woken {
                Turn::Done(outcome) => outcome,
                Turn::Lead if signal.is_some_and(AbortSignal::aborted) => {
                    gather.hand_over();
                    Err(LockerError::aborted())
                }
                Turn::Lead => self.lead(gather, item, signal).await,
                Turn::Single => self.single(&item, signal).await,
                // Cancelled while gathering: its item leaves the batch before it is sent.
                Turn::Waiting => {
                    gather
                        .queue
                        .borrow_mut()
                        .retain(|q| !Rc::ptr_eq(&q.turn, &turn));
                    Err(LockerError::aborted())
                }
            }
        })
    }

    async fn single<T: Item>(&self, item: &T, signal: Option<&AbortSignal>) -> Outcome {
        let (path, body) = item.single()?;
        self.api(Method::POST, &path, body.as_deref(), signal).await
    }

    /// Sends `own` with the items queued (up to `BATCH_MAX` in all; alone by the single route),
    /// hands each its outcome and
    /// the next batch to the first item queued meanwhile. The request carries no file's signal:
    /// one file cancelled does not cancel the others' items.
    async fn lead<T: Item>(
        &self,
        gather: &Gather<T>,
        own: T,
        signal: Option<&AbortSignal>,
    ) -> Outcome {
        let others: Vec<Queued<T>> = {
            let mut queue = gather.queue.borrow_mut();
            let n = queue.len().min(BATCH_MAX - 1);
            queue.drain(..n).collect()
        };
        if others.is_empty() {
            // Alone: the single route, as before batches (no 404 to learn on an older Worker,
            // and the same requests as ever for one file).
            let outcome = self.single(&own, signal).await;
            gather.hand_over();
            return outcome;
        }
        let count = others.len() + 1;
        let items = std::iter::once(own.clone())
            .chain(others.iter().map(|q| q.item.clone()))
            .collect();
        let split = match T::batch(items) {
            Ok(body) => match self.api(Method::POST, T::ROUTE, Some(&body), None).await {
                Ok(answer) => split(&answer).and_then(|o| {
                    if o.len() == count {
                        Ok(o)
                    } else {
                        Err(LockerError::new(
                            code::BAD_ANSWER,
                            "the batch answer does not have one result per item",
                        ))
                    }
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let outcomes: Vec<Outcome> = match split {
            Ok(o) => o,
            // An older Worker: every item, this one and those to come, goes by the single route.
            Err(e) if matches!(e.status, Some(404 | 405)) => {
                gather.absent.set(true);
                for q in others {
                    q.turn.replace(Turn::Single);
                    q.wake.call(Ok(JsValue::NULL));
                }
                gather.hand_over();
                return self.single(&own, signal).await;
            }
            Err(e) => (0..count).map(|_| Err(e.clone())).collect(),
        };
        let mut outcomes = outcomes.into_iter();
        let mine = outcomes.next();
        for (q, outcome) in others.into_iter().zip(outcomes) {
            q.turn.replace(Turn::Done(outcome));
            q.wake.call(Ok(JsValue::NULL));
        }
        gather.hand_over();
        check_aborted(signal)?;
        mine.unwrap_or_else(|| Err(LockerError::new(code::BAD_ANSWER, "an empty batch answer")))
    }
}
