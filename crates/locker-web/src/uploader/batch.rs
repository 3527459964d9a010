//! Reserves and completes of many files gathered into batch requests (`POST
//! /v1/uploads:batch`, `POST /v1/uploads:complete`): when no request of a kind
//! is in flight, the first file's item leads the next request. It sends at once, by the single
//! route when nothing else is queued (one file alone makes the requests it always made), unless
//! holding back loses nothing: then it waits for more items, woken by every item queued and
//! every change of the Uploader's slots (`locker_core::gather::send_now`), until 32 are
//! queued, holding back would start to cost (transfers about to run out of reserved files, no
//! transfer left to finish), nothing more is coming, or it has waited long enough (a timer
//! ends the wait; a browser may stretch it to a second in a hidden tab). While a request is
//! in flight the next files' items gather behind it (up to `BATCH_MAX`).
//!
//! Each item comes back to its file as the [`Answer`] or the refusal the single route would have
//! given it, so the file's retry loop (`Inner::retrying`, with `locker_core::upload_state`),
//! token renewal and dedup are the single route's: a batch request that fails as a whole fails
//! every item with that error, and each file retries its own item, in a later batch. A Worker
//! without the route (404/405) is asked one item at a time from then on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_net::http::Method;
use locker_core::api::{ReserveRequest, BATCH_MAX};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use super::pipeline::Pending;
use super::Inner;
use crate::error::{code, LockerError};
use crate::js::{check_aborted, deferred, on_abort, wait, within, Finish};
use crate::transfer::{refusal, Answer};

/// One file's answer, as the single route would have given it.
type Outcome = Result<Answer, LockerError>;

use locker_core::gather::linger_ms;
pub(super) use locker_core::gather::Kind;

/// An item of either batch route, already encoded: one type for both routes, so that the
/// gathering below is compiled once (generic over the two item types it was compiled twice:
/// 3.7 KB gzip of the module).
#[derive(Clone)]
pub(super) struct Item {
    /// The item as an element of the batch body's list (JSON).
    json: String,
    /// The single route's path.
    path: String,
    /// Whether the single route's body is `json` (a reservation) or empty (a complete).
    with_body: bool,
}

impl Item {
    /// A reservation: an element of `POST /v1/uploads:batch`'s `uploads`, or alone the body of
    /// `POST /v1/uploads`.
    pub(super) fn reserve(request: &ReserveRequest) -> Result<Self, LockerError> {
        Ok(Self {
            json: encode(request)?,
            path: "/v1/uploads".into(),
            with_body: true,
        })
    }

    /// The complete of reservation `id`: an element of `POST /v1/uploads:complete`'s
    /// `upload_ids`, or alone `POST /v1/uploads/{id}/complete`.
    pub(super) fn complete(id: &str) -> Result<Self, LockerError> {
        Ok(Self {
            json: encode(id)?,
            path: ["/v1/uploads/", id, "/complete"].concat(),
            with_body: false,
        })
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, LockerError> {
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

/// The part of `locker_core::api::BatchRefusal` that tells a refused item from an answered one
/// (no answer has an `http_status`); its `error` is read by `refusal` as the single route's
/// body is. Smaller in the module than decoding the whole `BatchRefusal` a second time.
#[derive(Deserialize)]
struct Refused {
    http_status: u16,
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
        .map(|raw| match serde_json::from_str::<Refused>(raw.get()) {
            // Its `error` is read as the single route's `{"error": ...}` body is.
            Ok(r) => Err(refusal(r.http_status, raw.get())),
            Err(_) => Ok(Answer {
                status: answer.status,
                text: raw.get().to_owned(),
            }),
        })
        .collect())
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

struct Queued {
    item: Item,
    turn: Rc<RefCell<Turn>>,
    wake: Finish,
}

/// The items of one kind waiting for the request in flight to come back.
pub(super) struct Gather {
    pub(super) kind: Kind,
    /// The batch route.
    route: &'static str,
    /// The name of the batch body's list (`locker_core::api::ReserveBatch`, `CompleteBatch`).
    list: &'static str,
    /// In arrival order. A `Vec`, not a `VecDeque`: it holds a few hundred files at most (its
    /// `remove(0)` is cheap), and a `VecDeque<Queued>` is compiled for this queue alone while
    /// `Vec`'s code is mostly shared with the module's other vectors.
    queue: RefCell<Vec<Queued>>,
    flying: Cell<bool>,
    /// The Worker answered 404/405 to the batch route.
    absent: Cell<bool>,
    /// A lead holding its batch back: woken to look again by [`Gather::nudge`].
    lingering: RefCell<Option<Finish>>,
}

impl Gather {
    /// Reservations, into `POST /v1/uploads:batch` requests.
    pub(super) fn reserves() -> Self {
        Self::new(Kind::Reserves, "/v1/uploads:batch", "uploads")
    }

    /// Completes, into `POST /v1/uploads:complete` requests.
    pub(super) fn completes() -> Self {
        Self::new(Kind::Completes, "/v1/uploads:complete", "upload_ids")
    }

    fn new(kind: Kind, route: &'static str, list: &'static str) -> Self {
        Self {
            kind,
            route,
            list,
            queue: RefCell::default(),
            flying: Cell::new(false),
            absent: Cell::new(false),
            lingering: RefCell::default(),
        }
    }

    /// Wakes a lead holding its batch back, to decide again whether to send.
    pub(super) fn nudge(&self) {
        let lingering = self.lingering.borrow_mut().take();
        if let Some(wake) = lingering {
            wake.call(Ok(JsValue::NULL));
        }
    }

    /// The batch request's body: the JSON of `own` then of `others`, as the list the route
    /// reads (`locker_core::api::ReserveBatch`, `CompleteBatch`; see the tests).
    fn body<'i>(&self, own: &Item, others: impl Iterator<Item = &'i Item>) -> String {
        let mut body = ["{\"", self.list, "\":[", &own.json].concat();
        for item in others {
            body.push(',');
            body.push_str(&item.json);
        }
        body.push_str("]}");
        body
    }

    /// Gives the right to send to the first queued item, or notes nothing is in flight. Once the
    /// route is known absent, every queued item goes by the single route instead (no second
    /// batch is sent to learn it again).
    fn hand_over(&self) {
        if self.absent.get() {
            let queued = std::mem::take(&mut *self.queue.borrow_mut());
            for q in queued {
                q.turn.replace(Turn::Single);
                q.wake.call(Ok(JsValue::NULL));
            }
            self.flying.set(false);
            return;
        }
        let next = {
            let mut queue = self.queue.borrow_mut();
            (!queue.is_empty()).then(|| queue.remove(0))
        };
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
    pub(super) fn gathered<'a>(
        &'a self,
        gather: &'a Gather,
        item: &Item,
        signal: Option<&'a AbortSignal>,
    ) -> Pending<'a> {
        let item = item.clone();
        Box::pin(async move {
            if gather.absent.get() {
                return self.single(&item, signal).await;
            }
            // When this item came: a lead's wait is counted from its own.
            let since = js_sys::Date::now();
            if !gather.flying.replace(true) {
                return self.lead(gather, item, since, signal).await;
            }
            let turn = Rc::new(RefCell::new(Turn::Waiting));
            let (promise, wake) = deferred();
            gather.queue.borrow_mut().push(Queued {
                item: item.clone(),
                turn: turn.clone(),
                wake: wake.clone(),
            });
            gather.nudge();
            let _listener = signal.map(|s| on_abort(s, move || wake.call(Ok(JsValue::NULL))));
            let _ = wait(promise).await;
            let woken = turn.replace(Turn::Waiting);
            match woken {
                Turn::Done(outcome) => outcome,
                Turn::Lead if signal.is_some_and(AbortSignal::aborted) => {
                    gather.hand_over();
                    Err(LockerError::aborted())
                }
                Turn::Lead => self.lead(gather, item, since, signal).await,
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

    async fn single(&self, item: &Item, signal: Option<&AbortSignal>) -> Outcome {
        let body = item.with_body.then_some(item.json.as_str());
        self.api(Method::POST, &item.path, body, signal).await
    }

    /// Sends `own` (queued at `since`) with the items queued (up to `BATCH_MAX` in all; alone by
    /// the single route), once `Inner::batch_ready` says so; hands each its outcome and the
    /// next batch to the first item queued meanwhile. The request carries no file's signal:
    /// one file cancelled does not cancel the others' items.
    async fn lead(
        &self,
        gather: &Gather,
        own: Item,
        since: f64,
        signal: Option<&AbortSignal>,
    ) -> Outcome {
        loop {
            let n = gather.queue.borrow().len() + 1;
            let waited = js_sys::Date::now() - since;
            if n >= BATCH_MAX || self.batch_ready(gather.kind, n, waited) {
                break;
            }
            let (promise, wake) = deferred();
            gather.lingering.replace(Some(wake.clone()));
            let _listener = signal.map(|s| on_abort(s, move || wake.call(Ok(JsValue::NULL))));
            // Woken by the next change, or when the wait is over: a long transfer brings no
            // change for its whole length.
            let _ = within(&promise, linger_ms(gather.kind) - waited).await;
            gather.lingering.take();
            if signal.is_some_and(AbortSignal::aborted) {
                gather.hand_over();
                return Err(LockerError::aborted());
            }
        }
        let others: Vec<Queued> = {
            let mut queue = gather.queue.borrow_mut();
            let n = queue.len().min(BATCH_MAX - 1);
            let rest = queue.split_off(n);
            std::mem::replace(&mut *queue, rest)
        };
        if others.is_empty() {
            // Alone: the single route, as before batches (no 404 to learn on an older Worker,
            // and the same requests as ever for one file).
            let outcome = self.single(&own, signal).await;
            gather.hand_over();
            return outcome;
        }
        let count = others.len() + 1;
        let body = gather.body(&own, others.iter().map(|q| &q.item));
        let split = match self
            .api(Method::POST, gather.route, Some(&body), None)
            .await
        {
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

#[cfg(test)]
mod tests {
    use locker_core::api::{CompleteBatch, ReserveBatch};

    use super::*;

    fn request(path: &str, filename: Option<&str>) -> ReserveRequest {
        ReserveRequest {
            namespace: "ns".into(),
            path: path.into(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            size: 0,
            content_type: "text/plain".into(),
            filename: filename.map(Into::into),
            expires_in: None,
            multipart: Some(false),
        }
    }

    #[test]
    fn a_batch_body_is_the_wire_type_of_its_route() -> Result<(), LockerError> {
        let (a, b) = (
            request("a \"q\".txt", None),
            request("b.txt", Some("b é.txt")),
        );
        let (ia, ib) = (Item::reserve(&a)?, Item::reserve(&b)?);
        let gather = Gather::reserves();
        assert_eq!(gather.route, "/v1/uploads:batch");
        let body = gather.body(&ia, [&ib].into_iter());
        let read: ReserveBatch =
            serde_json::from_str(&body).map_err(|e| LockerError::invalid(e.to_string()))?;
        assert_eq!(
            read,
            ReserveBatch {
                uploads: vec![a.clone(), b]
            }
        );
        // Alone, the single route's body is the request itself.
        assert_eq!((ia.path.as_str(), ia.with_body), ("/v1/uploads", true));
        assert_eq!(
            serde_json::from_str::<ReserveRequest>(&ia.json).ok(),
            Some(a)
        );

        let (c, d) = (Item::complete("up_1")?, Item::complete("up_2")?);
        let gather = Gather::completes();
        assert_eq!(gather.route, "/v1/uploads:complete");
        let body = gather.body(&c, [&d, &c].into_iter());
        let read: CompleteBatch =
            serde_json::from_str(&body).map_err(|e| LockerError::invalid(e.to_string()))?;
        assert_eq!(read.upload_ids, vec!["up_1", "up_2", "up_1"]);
        assert_eq!(
            (c.path.as_str(), c.with_body),
            ("/v1/uploads/up_1/complete", false)
        );
        Ok(())
    }

    #[test]
    fn a_batch_answer_splits_into_refusals_and_single_route_bodies() -> Result<(), LockerError> {
        let done = r#"{"status":"complete","ref":"locker://ns/a"}"#;
        let answer = Answer {
            status: 200,
            text: [
                r#"{"results":[{"http_status":413,"error":{"code":"too_large","message":"m"}},"#,
                done,
                "]}",
            ]
            .concat(),
        };
        let mut outcomes = split(&answer)?.into_iter();
        let refused = outcomes.next().and_then(Result::err);
        assert_eq!(
            refused.map(|e| (e.code, e.message, e.status)),
            Some(("too_large".into(), "m".into(), Some(413)))
        );
        let answered = outcomes.next().and_then(Result::ok);
        assert_eq!(
            answered.map(|a| (a.status, a.text)),
            Some((200, done.into()))
        );
        assert!(outcomes.next().is_none());
        let bad = Answer {
            status: 200,
            text: "[]".into(),
        };
        assert_eq!(
            split(&bad).err().map(|e| e.code),
            Some(code::BAD_ANSWER.into())
        );
        Ok(())
    }
}
