//! When a client holding back a batch of reservations or completes should send it: the rule of
//! the browser module's Uploader (`locker-web`, `uploader/batch.rs`), with no clock and no
//! browser. The Worker's fixed cost per request is far above its cost per item (under `wrangler
//! dev` about 10 ms of CPU per request against 0.4 ms per reservation and 1.5 ms per complete
//! in a batch of 100), so a batch is held back for more items, but only while that costs
//! nothing.

/// Items a held-back batch waits for: 32 to a request takes most of what batching saves.
pub const GATHERED: usize = 32;

/// Which batch route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reserves,
    Completes,
}

/// The longest a batch is held back (milliseconds). A complete held back delays its file's
/// "stored" by this much at most; a reservation is held back only while the transfers have
/// files queued, so it delays nothing and may wait longer (and fill its batch on a slow link).
pub const fn linger_ms(kind: Kind) -> f64 {
    match kind {
        Kind::Reserves => 1000.0,
        Kind::Completes => 250.0,
    }
}

/// What the client sees of its pipeline when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipeline {
    /// Transfers at once (the Uploader's `concurrency`).
    pub transfer_slots: usize,
    /// Transfers under way.
    pub transferring: usize,
    /// Reserved files waiting for a transfer slot.
    pub reserved_waiting: usize,
    /// Files still on their way to reserving (hashing, or waiting to).
    pub to_reserve: usize,
}

/// Whether a batch of `n` items, the oldest held back `waited_ms`, should go now: at
/// [`GATHERED`] items, after [`linger_ms`], and otherwise as soon as waiting would cost
/// something. Reservations go once fewer than two reserved files per transfer slot queue (so
/// the batch is answered before the transfers run dry) or nothing more is coming; completes go
/// once no transfer is under way (none will bring the next complete).
pub fn send_now(kind: Kind, n: usize, waited_ms: f64, p: Pipeline) -> bool {
    if n >= GATHERED || waited_ms >= linger_ms(kind) {
        return true;
    }
    match kind {
        Kind::Reserves => p.reserved_waiting < 2 * p.transfer_slots || p.to_reserve == 0,
        Kind::Completes => p.transferring + p.reserved_waiting == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSY: Pipeline = Pipeline {
        transfer_slots: 3,
        transferring: 3,
        reserved_waiting: 40,
        to_reserve: 500,
    };

    #[test]
    fn a_batch_waits_only_while_that_costs_nothing() {
        for kind in [Kind::Reserves, Kind::Completes] {
            assert!(
                !send_now(kind, 1, 0.0, BUSY),
                "{kind:?} held back while busy"
            );
            assert!(!send_now(kind, GATHERED - 1, linger_ms(kind) - 1.0, BUSY));
            assert!(send_now(kind, GATHERED, 0.0, BUSY), "{kind:?} full");
            assert!(
                send_now(kind, 1, linger_ms(kind), BUSY),
                "{kind:?} waited long enough"
            );
        }
        // Completes hold back longer than a file's "stored" should wait: no.
        assert!(linger_ms(Kind::Completes) <= 250.0);
    }

    #[test]
    fn reservations_go_before_the_transfers_run_dry_or_when_nothing_more_comes() {
        let first = Pipeline {
            transferring: 0,
            reserved_waiting: 0,
            ..BUSY
        };
        // The first file of a drop is not held back.
        assert!(send_now(Kind::Reserves, 1, 0.0, first));
        let low = Pipeline {
            reserved_waiting: 5,
            ..BUSY
        };
        assert!(send_now(Kind::Reserves, 1, 0.0, low));
        let enough = Pipeline {
            reserved_waiting: 6,
            ..BUSY
        };
        assert!(!send_now(Kind::Reserves, 1, 0.0, enough));
        let last = Pipeline {
            to_reserve: 0,
            ..BUSY
        };
        assert!(send_now(Kind::Reserves, 1, 0.0, last));
    }

    #[test]
    fn completes_go_once_no_transfer_is_left() {
        let idle = Pipeline {
            transferring: 0,
            reserved_waiting: 0,
            ..BUSY
        };
        assert!(send_now(Kind::Completes, 1, 0.0, idle));
        // A reserved file about to transfer will bring a complete too.
        let about_to = Pipeline {
            transferring: 0,
            reserved_waiting: 1,
            ..BUSY
        };
        assert!(!send_now(Kind::Completes, 1, 0.0, about_to));
    }
}
