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
mod tests;
