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
