//! The life of one file in the browser module's `Uploader`, as a pure state machine: what the
//! upload is doing, what may happen next, and what to do about a failure (retry after a
//! backoff, renew an expired reservation, give up). The `Uploader` does the I/O and reports what
//! happened as an [`Event`]; [`Machine::transition`] answers the next [`Upload`] and at most one
//! [`Action`]. The widget renders the states it is told (Uppy's split between core state and
//! UI), so every rule about an upload's course is here and tested on the host.
//!
//! ```text
//! Waiting -> Hashing -> Reserving -> Transferring -> Completing -> Stored
//!                           |  ^            |              |  \           ^
//!                           |  +-- expired -+--------------+   Verifying --+
//!                           +-> Deduplicated             (a large upload in parts the
//!                                                          Worker checks on its own)
//! any active phase -> Failed | Cancelled;  Failed | Cancelled -> Waiting (the person retries)
//! ```
//!
//! An upload in parts goes the same way: its reservation (fresh, or one found again after a
//! reload, [`Event::ReservedParts`]) enters `Transferring` with [`Parts`] counted, each stored
//! part is an [`Event::PartStored`], and a part's own retries ([`Machine::part_failed`]) are
//! told as [`Event::PartRetry`] without leaving the phase: parts retry on their own, in
//! parallel, while the reservation as a whole follows the rules above.
//!
//! Randomness (the backoff's jitter) is passed in, like the clock elsewhere in this crate.

use crate::client::{self, code, RetryPolicy};

/// Where an upload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Added, waiting for a free hashing slot.
    Waiting,
    /// Reading the file and computing its SHA-256.
    Hashing,
    /// Asking the Worker for a reservation (or learning the bytes are stored).
    Reserving,
    /// Sending the bytes to the signed URL.
    Transferring,
    /// Asking the Worker to verify and commit what was stored.
    Completing,
    /// The Worker answered that the object (a large upload in parts) is being verified by its
    /// scheduled check: asked again from time to time until it is committed or refused.
    Verifying,
    /// Done: the bytes were sent and verified.
    Stored,
    /// Done: the tenant had these bytes already; nothing was sent.
    Deduplicated,
    /// Ended by a refusal or by running out of retries.
    Failed,
    /// Ended by the caller.
    Cancelled,
}

impl Phase {
    /// The name JavaScript sees (`state-change`'s `state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Hashing => "hashing",
            Self::Reserving => "reserving",
            Self::Transferring => "transferring",
            Self::Completing => "completing",
            Self::Verifying => "verifying",
            Self::Stored => "stored",
            Self::Deduplicated => "deduplicated",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether nothing happens any more without the person asking (Stored, Deduplicated,
    /// Failed, Cancelled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Stored | Self::Deduplicated | Self::Failed | Self::Cancelled
        )
    }

    /// The network step this phase retries, if any.
    pub fn step(self) -> Option<Step> {
        match self {
            Self::Reserving => Some(Step::Reserve),
            Self::Transferring => Some(Step::Transfer),
            Self::Completing | Self::Verifying => Some(Step::Complete),
            _ => None,
        }
    }

    /// Whether the Worker holds a reservation for this upload that nobody will complete if it
    /// ends now: it is released ([`Action::Abandon`]) rather than left to expire. A `Verifying`
    /// upload holds none: the Worker finishes it whoever watches.
    fn holds_reservation(self) -> bool {
        matches!(self, Self::Transferring | Self::Completing)
    }
}

/// The steps that talk to the network and are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Reserve,
    Transfer,
    Complete,
}

impl Step {
    /// The name JavaScript sees (`retry`'s `step`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Transfer => "transfer",
            Self::Complete => "complete",
        }
    }
}

/// A failure as the `Uploader` saw it: the HTTP status if there was an answer, and the code of
/// [`client::code`] or the Worker's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

/// What happened to an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A hashing slot is free: reading starts.
    Start,
    /// This many bytes of the file are hashed.
    HashProgress(u64),
    /// The digest is known.
    Hashed,
    /// The Worker holds these bytes already: a file row was written, nothing is sent.
    Deduplicated,
    /// The Worker reserved an upload and signed a URL for it.
    Reserved,
    /// This many bytes of the current transfer attempt are sent.
    TransferProgress(u64),
    /// The storage server took the bytes.
    Transferred,
    /// The Worker verified and committed them.
    Completed,
    /// The Worker is verifying them on its own (`complete` answered 202 `verifying`).
    Verifying,
    /// The current phase's network step failed: retried, renewed or final, as the rules say.
    Failed(Failure),
    /// A failure outside the retried steps (a check of the file, the hash, `getToken()`, a
    /// cancelled wait, a part that failed for good): it ends the upload.
    Fatal(Failure),
    /// The Worker reserved an upload in `total` parts, of which `stored` (`stored_bytes`
    /// bytes) are stored already: 0 for a fresh reservation, more for one resumed after a
    /// reload.
    ReservedParts {
        total: u32,
        stored: u32,
        stored_bytes: u64,
    },
    /// One more part is stored.
    PartStored,
    /// A part failed and is tried again ([`Machine::part_failed`] said so); the others go on.
    PartRetry(Failure),
    /// The caller cancelled.
    Cancel,
    /// The person asks for another try of a failed or cancelled upload.
    Restart,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::HashProgress(_) => "hash progress",
            Self::Hashed => "hashed",
            Self::Deduplicated => "deduplicated",
            Self::Reserved => "reserved",
            Self::TransferProgress(_) => "transfer progress",
            Self::Transferred => "transferred",
            Self::Completed => "completed",
            Self::Verifying => "verifying",
            Self::Failed(_) => "a failure",
            Self::Fatal(_) => "a fatal failure",
            Self::ReservedParts { .. } => "reserved parts",
            Self::PartStored => "part stored",
            Self::PartRetry(_) => "a part's retry",
            Self::Cancel => "cancel",
            Self::Restart => "restart",
        }
    }
}

/// What the `Uploader` must do after a transition, besides carrying on in the new phase.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Wait `delay_ms`, then do `step` again; this is retry number `attempt` of it (the `retry`
    /// event).
    Retry {
        step: Step,
        attempt: u32,
        delay_ms: f64,
    },
    /// Release the current reservation (`DELETE /v1/uploads/{id}`), best effort: the upload
    /// ended without completing it, or its signed URL ran out and a new one is asked for.
    Abandon,
}

/// The parts of an upload in parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Parts stored, those found stored when resuming included.
    pub done: u32,
    pub total: u32,
    /// Parts that were stored already when this reservation was resumed after a reload (0 for
    /// a fresh one): the widget says "Resuming (N of M parts stored)".
    pub resumed: u32,
}

/// What to do about a part whose transfer failed ([`Machine::part_failed`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PartOutcome {
    /// Send it again after `delay_ms`, to the same URL.
    Retry { delay_ms: f64 },
    /// Its signed URL ran out: ask the Worker for a fresh one and send it again at once.
    FreshUrl,
    /// The failure is final (a refusal, retries used up, cancelled): the upload ends.
    GiveUp,
}

/// One upload's state. Progress never goes backwards within a run: a retried transfer starts
/// sending from byte 0 again, but `sent` stays at the most any attempt reached until the new
/// attempt passes it. Only [`Event::Restart`] (a new run) starts from zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub phase: Phase,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes hashed, at most `size`.
    pub hashed: u64,
    /// Bytes sent, at most `size`.
    pub sent: u64,
    /// Retries made of the current phase's step (0 on entering a phase).
    pub attempt: u32,
    /// Reservations obtained in this run (an expired URL's renewal adds one).
    pub reservations: u32,
    /// Why it ended ([`Phase::Failed`], [`Phase::Cancelled`]), or the failure the current
    /// phase's retry is about; cleared on entering a phase.
    pub error: Option<Failure>,
    /// Counted parts while an upload in parts transfers (kept when it ends, for the record);
    /// `None` for an upload in one request.
    pub parts: Option<Parts>,
}

impl Upload {
    /// A file just added.
    pub fn new(size: u64) -> Self {
        Self {
            phase: Phase::Waiting,
            size,
            hashed: 0,
            sent: 0,
            attempt: 0,
            reservations: 0,
            error: None,
            parts: None,
        }
    }

    /// The progress of the current phase as `(loaded, total)` bytes: hashing counts hashed
    /// bytes; reserving, the transfer and what follows count sent bytes (a person sees one
    /// "uploading" from the reservation on, which must not jump from the hash's 100% back to
    /// 0 when the transfer starts, nor when an expired reservation is renewed); a finished
    /// upload is whole.
    pub fn progress(&self) -> (u64, u64) {
        let loaded = match self.phase {
            Phase::Waiting => 0,
            Phase::Hashing => self.hashed,
            Phase::Reserving | Phase::Transferring | Phase::Completing | Phase::Verifying => {
                self.sent
            }
            Phase::Stored | Phase::Deduplicated => self.size,
            Phase::Failed | Phase::Cancelled => self.sent.max(self.hashed),
        };
        (loaded, self.size)
    }

    fn enter(&self, phase: Phase) -> Self {
        Self {
            phase,
            attempt: 0,
            error: None,
            ..self.clone()
        }
    }
}

/// An event that cannot happen in the phase the upload is in: refused, the state unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not possible while {phase}", phase = phase.as_str())]
pub struct Illegal {
    pub phase: Phase,
    pub event: &'static str,
}

/// The rules: how often to retry, and how many reservations one run may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Machine {
    pub retry: RetryPolicy,
    /// Reservations one run may obtain: an expired URL is renewed while fewer were used.
    pub max_reservations: u32,
}

impl Machine {
    /// The state after `event`, and what to do about it. `random` is a uniform draw from
    /// `[0, 1)` for the backoff's jitter (`Math.random()`), used only when a retry is decided.
    pub fn transition(
        &self,
        state: &Upload,
        event: Event,
        random: f64,
    ) -> Result<(Upload, Option<Action>), Illegal> {
        use Phase::*;
        let illegal = |event: &Event| Illegal {
            phase: state.phase,
            event: event.name(),
        };
        let next = match (state.phase, &event) {
            (Waiting, Event::Start) => state.enter(Hashing),
            (Hashing, Event::HashProgress(n)) => Upload {
                hashed: state.hashed.max((*n).min(state.size)),
                ..state.clone()
            },
            (Hashing, Event::Hashed) => Upload {
                hashed: state.size,
                ..state.enter(Reserving)
            },
            (Reserving, Event::Deduplicated) => state.enter(Deduplicated),
            (Reserving, Event::Reserved) => Upload {
                reservations: state.reservations.saturating_add(1),
                parts: None,
                ..state.enter(Transferring)
            },
            (
                Reserving,
                Event::ReservedParts {
                    total,
                    stored,
                    stored_bytes,
                },
            ) if *total > 0 => {
                let stored = (*stored).min(*total);
                Upload {
                    reservations: state.reservations.saturating_add(1),
                    sent: state.sent.max((*stored_bytes).min(state.size)),
                    parts: Some(Parts {
                        done: stored,
                        total: *total,
                        resumed: stored,
                    }),
                    ..state.enter(Transferring)
                }
            }
            (Transferring, Event::PartStored) => match state.parts {
                Some(p) if p.done < p.total => Upload {
                    parts: Some(Parts {
                        done: p.done + 1,
                        ..p
                    }),
                    attempt: 0,
                    error: None,
                    ..state.clone()
                },
                _ => return Err(illegal(&event)),
            },
            (Transferring, Event::PartRetry(f)) if state.parts.is_some() => Upload {
                attempt: state.attempt.saturating_add(1),
                error: Some(f.clone()),
                ..state.clone()
            },
            (Transferring, Event::TransferProgress(n)) => Upload {
                sent: state.sent.max((*n).min(state.size)),
                ..state.clone()
            },
            (Transferring, Event::Transferred) => Upload {
                sent: state.size,
                ..state.enter(Completing)
            },
            (Completing, Event::Completed) => state.enter(Stored),
            (Completing, Event::Verifying) => state.enter(Verifying),
            // Asked again while the Worker is still checking: the same answer.
            (Verifying, Event::Verifying) => Upload {
                attempt: 0,
                error: None,
                ..state.clone()
            },
            (Verifying, Event::Completed) => state.enter(Stored),
            (phase, Event::Cancel) if !phase.is_final() => {
                return Ok(self.end(state, Cancelled, None));
            }
            (phase, Event::Failed(f)) if !phase.is_final() => {
                return Ok(self.failed(state, f, random));
            }
            (phase, Event::Fatal(f)) if !phase.is_final() => {
                let end = if f.code == code::ABORTED {
                    Cancelled
                } else {
                    Failed
                };
                return Ok(self.end(state, end, Some(f.clone())));
            }
            (Failed | Cancelled, Event::Restart) => Upload::new(state.size),
            _ => return Err(illegal(&event)),
        };
        Ok((next, None))
    }

    /// The upload ends in `phase`; a reservation it holds is released.
    fn end(
        &self,
        state: &Upload,
        phase: Phase,
        error: Option<Failure>,
    ) -> (Upload, Option<Action>) {
        let action = state.phase.holds_reservation().then_some(Action::Abandon);
        let ended = Upload {
            error,
            ..state.enter(phase)
        };
        (ended, action)
    }

    /// A part's transfer failed on its `attempt`-th try (1 for the first): send it again after
    /// a backoff (the same rules as a whole transfer), with a fresh URL if its URL ran out
    /// (a part's URL, not the reservation, is renewed: the parts stored stay), or give up.
    /// Each part counts its own tries, so one bad part does not use up the others' retries.
    pub fn part_failed(&self, attempt: u32, f: &Failure, random: f64) -> PartOutcome {
        if f.code == code::ABORTED || attempt > self.retry.retries {
            return PartOutcome::GiveUp;
        }
        if client::renews_reservation(&f.code) {
            return PartOutcome::FreshUrl;
        }
        match self.retry.next_delay(attempt, f.status, &f.code, random) {
            Some(delay_ms) => PartOutcome::Retry { delay_ms },
            None => PartOutcome::GiveUp,
        }
    }

    fn failed(&self, state: &Upload, f: &Failure, random: f64) -> (Upload, Option<Action>) {
        // A cancelled signal surfaces as a failure of whatever was running.
        if f.code == code::ABORTED {
            return self.end(state, Phase::Cancelled, Some(f.clone()));
        }
        // The signed URL ran out (a slow link, a long pause): a fresh reservation brings a
        // freshly signed one, on both transports alike.
        if state.phase.holds_reservation()
            && client::renews_reservation(&f.code)
            && state.reservations < self.max_reservations
        {
            return (state.enter(Phase::Reserving), Some(Action::Abandon));
        }
        if let Some(step) = state.phase.step() {
            let attempt = state.attempt.saturating_add(1);
            if let Some(delay_ms) = self.retry.next_delay(attempt, f.status, &f.code, random) {
                let retrying = Upload {
                    attempt,
                    error: Some(f.clone()),
                    ..state.clone()
                };
                let action = Action::Retry {
                    step,
                    attempt,
                    delay_ms,
                };
                return (retrying, Some(action));
            }
        }
        self.end(state, Phase::Failed, Some(f.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    const M: Machine = Machine {
        retry: RetryPolicy {
            retries: 2,
            base_ms: 100.0,
        },
        max_reservations: 3,
    };

    fn fail(status: Option<u16>, code: &str) -> Event {
        Event::Failed(Failure {
            status,
            code: code.into(),
            message: format!("{code} happened"),
        })
    }

    fn fatal(code: &str) -> Event {
        Event::Fatal(Failure {
            status: None,
            code: code.into(),
            message: format!("{code} happened"),
        })
    }

    /// Applies events in order, each of which must be legal; returns the state and the actions.
    fn run(from: Upload, events: &[Event]) -> (Upload, Vec<Option<Action>>) {
        let mut state = from;
        let mut actions = Vec::new();
        for e in events {
            let (next, action) = M
                .transition(&state, e.clone(), 0.5)
                .unwrap_or_else(|i| panic!("{e:?} from {state:?}: {i}"));
            state = next;
            actions.push(action);
        }
        (state, actions)
    }

    fn at(phase: Phase) -> Upload {
        let path: &[Event] = match phase {
            Waiting => &[],
            Hashing => &[Event::Start],
            Reserving => &[Event::Start, Event::Hashed],
            Transferring => &[Event::Start, Event::Hashed, Event::Reserved],
            Completing => &[
                Event::Start,
                Event::Hashed,
                Event::Reserved,
                Event::Transferred,
            ],
            Verifying => &[
                Event::Start,
                Event::Hashed,
                Event::Reserved,
                Event::Transferred,
                Event::Verifying,
            ],
            Stored => &[
                Event::Start,
                Event::Hashed,
                Event::Reserved,
                Event::Transferred,
                Event::Completed,
            ],
            Deduplicated => &[Event::Start, Event::Hashed, Event::Deduplicated],
            Failed => &[Event::Start, Event::Hashed],
            Cancelled => &[Event::Start, Event::Cancel],
        };
        let (mut s, _) = run(Upload::new(1000), path);
        if phase == Failed {
            s = run(s, &[fail(Some(403), "forbidden")]).0;
        }
        assert_eq!(s.phase, phase);
        s
    }

    const ALL: [Phase; 10] = [
        Waiting,
        Hashing,
        Reserving,
        Transferring,
        Completing,
        Verifying,
        Stored,
        Deduplicated,
        Failed,
        Cancelled,
    ];

    #[test]
    fn the_happy_paths() {
        let (s, actions) = run(
            Upload::new(1000),
            &[
                Event::Start,
                Event::HashProgress(400),
                Event::Hashed,
                Event::Reserved,
                Event::TransferProgress(700),
                Event::Transferred,
                Event::Completed,
            ],
        );
        assert_eq!(s.phase, Stored);
        assert_eq!((s.hashed, s.sent, s.reservations), (1000, 1000, 1));
        assert_eq!(s.progress(), (1000, 1000));
        assert!(actions.iter().all(Option::is_none));

        let (s, _) = run(
            Upload::new(5),
            &[Event::Start, Event::Hashed, Event::Deduplicated],
        );
        assert_eq!((s.phase, s.sent, s.reservations), (Deduplicated, 0, 0));
        assert_eq!(s.progress(), (5, 5));
    }

    /// Every (phase, event) pair: exactly the pairs of the diagram are legal, and a refused
    /// event leaves nothing changed (the caller keeps its state).
    #[test]
    fn every_other_transition_is_refused() {
        let events = [
            Event::Start,
            Event::HashProgress(1),
            Event::Hashed,
            Event::Deduplicated,
            Event::Reserved,
            Event::TransferProgress(1),
            Event::Transferred,
            Event::Completed,
            Event::Verifying,
            fail(Some(400), "bad"),
            fatal(code::NETWORK),
            Event::Cancel,
            Event::Restart,
            Event::ReservedParts {
                total: 3,
                stored: 0,
                stored_bytes: 0,
            },
            // Legal only in an upload in parts; `at(Transferring)` is one request.
            Event::PartStored,
            Event::PartRetry(Failure {
                status: None,
                code: code::NETWORK.into(),
                message: String::new(),
            }),
        ];
        let legal = |p: Phase, e: &Event| match (p, e) {
            (Waiting, Event::Start)
            | (Hashing, Event::HashProgress(_) | Event::Hashed)
            | (Reserving, Event::Deduplicated | Event::Reserved | Event::ReservedParts { .. })
            | (Transferring, Event::TransferProgress(_) | Event::Transferred)
            | (Completing | Verifying, Event::Completed | Event::Verifying)
            | (Failed | Cancelled, Event::Restart) => true,
            (p, Event::Failed(_) | Event::Fatal(_) | Event::Cancel) => !p.is_final(),
            _ => false,
        };
        let mut refused = 0;
        for phase in ALL {
            let state = at(phase);
            for e in &events {
                match M.transition(&state, e.clone(), 0.5) {
                    Ok(_) => assert!(legal(phase, e), "{e:?} accepted in {phase:?}"),
                    Err(i) => {
                        assert!(!legal(phase, e), "{e:?} refused in {phase:?}");
                        assert_eq!(i.phase, phase);
                        refused += 1;
                    }
                }
            }
        }
        // 10 phases x 16 events; legal: 12 forward steps (a repeated `verifying` answer
        // included), failure, fatal failure and cancel in the 6 active phases, restart in the 2
        // ended by failure or cancellation.
        assert_eq!(refused, 10 * 16 - (12 + 18 + 2));
        let e = M.transition(&at(Stored), Event::Cancel, 0.0).unwrap_err();
        assert_eq!(e.to_string(), "cancel is not possible while stored");
    }

    #[test]
    fn progress_never_goes_backwards_and_never_passes_the_size() {
        let (s, _) = run(
            at(Hashing),
            &[
                Event::HashProgress(600),
                Event::HashProgress(300),
                Event::HashProgress(5000),
            ],
        );
        assert_eq!(s.hashed, 1000);
        // A retried transfer restarts from 0: what is shown stays at the best attempt.
        let (s, actions) = run(
            at(Transferring),
            &[
                Event::TransferProgress(800),
                fail(None, code::NETWORK),
                Event::TransferProgress(100),
            ],
        );
        assert_eq!(
            (s.phase, s.sent, s.progress()),
            (Transferring, 800, (800, 1000))
        );
        assert!(matches!(actions[1], Some(Action::Retry { .. })));
        let (s, _) = run(s, &[Event::TransferProgress(900)]);
        assert_eq!(s.sent, 900);
        // Renewing the reservation keeps what was sent too.
        let (s, _) = run(s, &[fail(Some(403), code::EXPIRED), Event::Reserved]);
        assert_eq!((s.phase, s.sent), (Transferring, 900));
        // From reserving on, what is shown counts sent bytes: it starts at 0 rather than at the
        // hash's 100%, and a renewed reservation shows what was sent.
        assert_eq!(at(Reserving).progress(), (0, 1000));
        let (s, _) = run(s, &[fail(Some(403), code::EXPIRED)]);
        assert_eq!((s.phase, s.progress()), (Reserving, (900, 1000)));
        // In every phase, the progress shown is at most the size.
        for phase in ALL {
            let (loaded, total) = at(phase).progress();
            assert!(loaded <= total, "{phase:?}");
        }
    }

    #[test]
    fn transient_failures_are_retried_with_backoff_then_fail() {
        for (phase, step) in [
            (Reserving, Step::Reserve),
            (Transferring, Step::Transfer),
            (Completing, Step::Complete),
        ] {
            let s = at(phase);
            let (s, a) = M
                .transition(&s, fail(Some(503), "unavailable"), 0.0)
                .unwrap();
            assert_eq!(
                s.error.as_ref().map(|e| e.code.as_str()),
                Some("unavailable")
            );
            assert_eq!(
                (s.phase, s.attempt, a),
                (
                    phase,
                    1,
                    Some(Action::Retry {
                        step,
                        attempt: 1,
                        delay_ms: 50.0
                    })
                )
            );
            // The jitter is the draw passed in: the second retry waits 100-200 ms.
            let (s, a) = M.transition(&s, fail(None, code::NETWORK), 1.0).unwrap();
            assert_eq!(
                a,
                Some(Action::Retry {
                    step,
                    attempt: 2,
                    delay_ms: 200.0
                })
            );
            // Retries are used up: the third failure ends it, the reservation released.
            let (s, a) = M.transition(&s, fail(None, code::NETWORK), 0.0).unwrap();
            assert_eq!(s.phase, Failed);
            assert_eq!(
                s.error.as_ref().map(|e| e.code.as_str()),
                Some(code::NETWORK)
            );
            let abandon = (phase != Reserving).then_some(Action::Abandon);
            assert_eq!(a, abandon, "{phase:?}");
        }
    }

    #[test]
    fn the_retry_count_starts_again_in_each_phase() {
        let (s, _) = run(
            at(Reserving),
            &[fail(None, code::NETWORK), fail(None, code::NETWORK)],
        );
        assert_eq!(s.attempt, 2);
        let (s, _) = run(s, &[Event::Reserved]);
        assert_eq!((s.attempt, &s.error), (0, &None));
        let (s, actions) = run(s, &[fail(Some(500), "internal"), Event::Transferred]);
        assert!(matches!(actions[0], Some(Action::Retry { attempt: 1, .. })));
        assert_eq!((s.phase, s.attempt), (Completing, 0));
    }

    #[test]
    fn refusals_fail_at_once_and_hashing_is_not_retried() {
        for (phase, status, c) in [
            (Waiting, None, code::TOO_LARGE),
            (Hashing, None, code::HASH_FAILED),
            (Reserving, Some(413), "too_large"),
            (Reserving, None, code::TOKEN_FAILED),
            (Transferring, Some(403), code::STORAGE_REFUSED),
            (Completing, Some(422), "content_mismatch"),
        ] {
            let (s, a) = M.transition(&at(phase), fail(status, c), 0.5).unwrap();
            assert_eq!(s.phase, Failed, "{c}");
            assert_eq!(s.error.unwrap().code, c);
            assert_eq!(a.is_some(), phase.holds_reservation(), "{phase:?}");
        }
        // Even a retryable code is not retried where there is no network step.
        let (s, _) = M
            .transition(&at(Hashing), fail(None, code::NETWORK), 0.5)
            .unwrap();
        assert_eq!(s.phase, Failed);
    }

    #[test]
    fn a_fatal_failure_ends_the_upload_even_if_retryable() {
        for phase in ALL.into_iter().filter(|p| !p.is_final()) {
            let (s, a) = M.transition(&at(phase), fatal(code::NETWORK), 0.5).unwrap();
            assert_eq!((s.phase, s.attempt), (Failed, 0), "{phase:?}");
            assert_eq!(s.error.unwrap().code, code::NETWORK);
            assert_eq!(a.is_some(), phase.holds_reservation(), "{phase:?}");
            let (s, _) = M.transition(&at(phase), fatal(code::ABORTED), 0.5).unwrap();
            assert_eq!(s.phase, Cancelled, "{phase:?}");
            assert_eq!(s.error.unwrap().code, code::ABORTED);
        }
    }

    #[test]
    fn an_expired_url_gets_a_fresh_reservation_up_to_the_limit() {
        let expired = fail(Some(403), code::EXPIRED);
        let (s, a) = M
            .transition(&at(Transferring), expired.clone(), 0.5)
            .unwrap();
        assert_eq!(
            (s.phase, s.attempt, a),
            (Reserving, 0, Some(Action::Abandon))
        );
        // Also when the completion finds the reservation ran out.
        let (s, a) = M.transition(&at(Completing), expired.clone(), 0.5).unwrap();
        assert_eq!((s.phase, a), (Reserving, Some(Action::Abandon)));
        // Three reservations in all, then the expiry is final.
        let (s, _) = run(
            at(Transferring),
            &[
                expired.clone(),
                Event::Reserved,
                expired.clone(),
                Event::Reserved,
            ],
        );
        assert_eq!((s.phase, s.reservations), (Transferring, 3));
        let (s, a) = M.transition(&s, expired.clone(), 0.5).unwrap();
        assert_eq!((s.phase, a), (Failed, Some(Action::Abandon)));
        // While reserving there is no URL to renew: an expired token there is the Uploader's
        // business (renewed through getToken), and reaching the machine it is final.
        let (s, a) = M.transition(&at(Reserving), expired, 0.5).unwrap();
        assert_eq!((s.phase, a), (Failed, None));
    }

    #[test]
    fn cancelling_releases_a_held_reservation() {
        for phase in ALL.into_iter().filter(|p| !p.is_final()) {
            for event in [Event::Cancel, fail(None, code::ABORTED)] {
                let (s, a) = M.transition(&at(phase), event.clone(), 0.5).unwrap();
                assert_eq!(s.phase, Cancelled, "{phase:?} {event:?}");
                let abandon = phase.holds_reservation().then_some(Action::Abandon);
                assert_eq!(a, abandon, "{phase:?}");
            }
        }
    }

    #[test]
    fn a_restart_is_a_new_run_from_zero() {
        let (s, _) = run(
            at(Transferring),
            &[Event::TransferProgress(500), fail(Some(403), "forbidden")],
        );
        assert_eq!((s.phase, s.sent), (Failed, 500));
        let (s, a) = M.transition(&s, Event::Restart, 0.5).unwrap();
        assert_eq!((s, a), (Upload::new(1000), None));
        let (s, _) = M.transition(&at(Cancelled), Event::Restart, 0.5).unwrap();
        assert_eq!(s, Upload::new(1000));
    }

    fn in_parts(total: u32, stored: u32, stored_bytes: u64) -> Upload {
        run(
            at(Reserving),
            &[Event::ReservedParts {
                total,
                stored,
                stored_bytes,
            }],
        )
        .0
    }

    #[test]
    fn an_upload_in_parts_counts_its_parts_to_the_end() {
        let s = in_parts(3, 0, 0);
        assert_eq!((s.phase, s.reservations, s.sent), (Transferring, 1, 0));
        assert_eq!(
            s.parts,
            Some(Parts {
                done: 0,
                total: 3,
                resumed: 0
            })
        );
        let (s, actions) = run(
            s,
            &[
                Event::TransferProgress(400),
                Event::PartStored,
                Event::PartStored,
                Event::TransferProgress(900),
                Event::PartStored,
            ],
        );
        assert!(actions.iter().all(Option::is_none));
        assert_eq!(s.parts.map(|p| (p.done, p.total)), Some((3, 3)));
        assert_eq!(s.progress(), (900, 1000));
        // Never more parts than the plan has.
        let e = M.transition(&s, Event::PartStored, 0.5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "part stored is not possible while transferring"
        );
        let (s, _) = run(s, &[Event::Transferred, Event::Completed]);
        assert_eq!((s.phase, s.progress()), (Stored, (1000, 1000)));
        // A plan of no parts is not one.
        let none = Event::ReservedParts {
            total: 0,
            stored: 0,
            stored_bytes: 0,
        };
        assert!(M.transition(&at(Reserving), none, 0.5).is_err());
    }

    #[test]
    fn a_resumed_upload_starts_from_the_parts_stored() {
        let s = in_parts(4, 3, 750);
        assert_eq!(
            s.parts,
            Some(Parts {
                done: 3,
                total: 4,
                resumed: 3
            })
        );
        // Progress starts at what is stored and never goes below it.
        assert_eq!(s.progress(), (750, 1000));
        let (s, _) = run(s, &[Event::TransferProgress(10)]);
        assert_eq!(s.sent, 750);
        // A report larger than the plan is held to it, and to the file's size.
        let s = in_parts(2, 5, 5000);
        assert_eq!((s.parts.map(|p| p.done), s.sent), (Some(2), 1000));
        // A fresh reservation after this one (its URLs ran out) is counted afresh, the bytes
        // shown kept.
        let (s, a) = run(
            in_parts(4, 1, 250),
            &[fail(Some(403), code::EXPIRED), Event::Reserved],
        );
        assert_eq!(a[0], Some(Action::Abandon));
        assert_eq!((s.parts, s.sent, s.reservations), (None, 250, 2));
    }

    #[test]
    fn a_part_retries_on_its_own_and_the_upload_stays_transferring() {
        let net = Failure {
            status: None,
            code: code::NETWORK.into(),
            message: "reset".into(),
        };
        let (s, a) = run(in_parts(3, 0, 0), &[Event::PartRetry(net.clone())]);
        assert_eq!(a, [None]);
        assert_eq!((s.phase, s.attempt), (Transferring, 1));
        assert_eq!(
            s.error.as_ref().map(|e| e.code.as_str()),
            Some(code::NETWORK)
        );
        // A stored part clears the trouble shown.
        let (s, _) = run(s, &[Event::PartStored]);
        assert_eq!((s.attempt, s.error), (0, None));

        // M allows 2 retries per part: backoff as for a whole transfer, then give up.
        assert_eq!(
            M.part_failed(1, &net, 0.0),
            PartOutcome::Retry { delay_ms: 50.0 }
        );
        assert_eq!(
            M.part_failed(2, &net, 1.0),
            PartOutcome::Retry { delay_ms: 200.0 }
        );
        assert_eq!(M.part_failed(3, &net, 0.5), PartOutcome::GiveUp);
        let with = |status, c: &str| Failure {
            status,
            code: c.into(),
            message: String::new(),
        };
        // An expired part URL is re-signed, not the reservation; a refusal or a cancel ends it.
        assert_eq!(
            M.part_failed(1, &with(Some(403), code::EXPIRED), 0.5),
            PartOutcome::FreshUrl
        );
        assert_eq!(
            M.part_failed(3, &with(Some(403), code::EXPIRED), 0.5),
            PartOutcome::GiveUp
        );
        for f in [
            with(Some(403), code::STORAGE_REFUSED),
            with(Some(422), "content_mismatch"),
            with(None, code::ABORTED),
        ] {
            assert_eq!(M.part_failed(1, &f, 0.5), PartOutcome::GiveUp, "{f:?}");
        }
        // Giving up is a fatal failure: the reservation (the multipart upload) is released.
        let (s, a) = run(in_parts(3, 1, 1), &[fatal(code::NETWORK)]);
        assert_eq!((s.phase, a[0].clone()), (Failed, Some(Action::Abandon)));
        let (s, a) = run(in_parts(3, 1, 1), &[Event::Cancel]);
        assert_eq!((s.phase, a[0].clone()), (Cancelled, Some(Action::Abandon)));
    }

    #[test]
    fn a_verifying_upload_ends_stored_and_holds_no_reservation() {
        let (s, actions) = run(at(Completing), &[Event::Verifying, Event::Verifying]);
        assert_eq!((s.phase, s.progress()), (Verifying, (1000, 1000)));
        assert!(actions.iter().all(Option::is_none));
        let (s, _) = run(s, &[Event::Completed]);
        assert_eq!(s.phase, Stored);
        // Cancelled while the Worker checks: nothing to release, the Worker finishes it.
        let (s, a) = run(at(Verifying), &[Event::Cancel]);
        assert_eq!((s.phase, a[0].clone()), (Cancelled, None));
        // Asking again is the complete step, retried by the same rules.
        let (s, a) = run(at(Verifying), &[fail(None, code::NETWORK)]);
        assert_eq!(s.phase, Verifying);
        assert!(matches!(
            a[0],
            Some(Action::Retry {
                step: Step::Complete,
                attempt: 1,
                ..
            })
        ));
    }

    #[test]
    fn names_are_what_javascript_sees() {
        let names: Vec<_> = ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "waiting",
                "hashing",
                "reserving",
                "transferring",
                "completing",
                "verifying",
                "stored",
                "deduplicated",
                "failed",
                "cancelled"
            ]
        );
        let finals: Vec<_> = ALL.into_iter().filter(|p| p.is_final()).collect();
        assert_eq!(finals, [Stored, Deduplicated, Failed, Cancelled]);
        assert_eq!(
            [Step::Reserve, Step::Transfer, Step::Complete].map(Step::as_str),
            ["reserve", "transfer", "complete"]
        );
    }
}
