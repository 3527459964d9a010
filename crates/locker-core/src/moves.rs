//! The rules of moving a tenant's blobs between buckets: which blob one copy may carry, how much
//! one scheduled run does, and when a move is over.

/// The largest blob one copy moves: a single PUT of S3 (and of an R2 binding) takes at most
/// 5 GB. Larger blobs stay in the source bucket, reported as `too_large`.
pub const MAX_COPY: u64 = 5 * 1000 * 1000 * 1000;

/// Attempts at a blob whose copy fails before the move gives up on it (it stays in the source,
/// reported as `failed`).
pub const MAX_ATTEMPTS: u64 = 3;

/// A move's id: `mv_` and 22 base64url characters (16 random bytes).
pub fn valid_id(id: &str) -> bool {
    id.strip_prefix("mv_").is_some_and(|rest| {
        rest.len() == 22
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    })
}

/// Whether a blob of `size` bytes is copied, given the configured limit (never above
/// [`MAX_COPY`]).
pub fn copyable(size: u64, limit: u64) -> bool {
    size <= limit.min(MAX_COPY)
}

/// Whether a run that has moved `blobs` blobs and `bytes` bytes starts another copy: at most
/// `max_blobs` blobs and, once one is done, no more after `max_bytes`. A single blob larger
/// than the byte budget still moves, alone in its run.
pub fn run_goes_on(blobs: u64, bytes: u64, max_blobs: u64, max_bytes: u64) -> bool {
    blobs < max_blobs.max(1) && (blobs == 0 || bytes < max_bytes)
}

/// A move is over when nothing the source holds for the tenant can still be moved (`movable`
/// blobs left) and no open reservation of the tenant can still commit bytes into the source.
pub fn finished(movable: u64, pending_uploads: u64) -> bool {
    movable == 0 && pending_uploads == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("mv_AAAAAAAAAAAAAAAAAAAA-_"));
        for bad in [
            "",
            "mv_",
            "mv_AAAAAAAAAAAAAAAAAAAAA",
            "mv_AAAAAAAAAAAAAAAAAAAAAAA",
            "xx_AAAAAAAAAAAAAAAAAAAAAA",
            "mv_AAAAAAAAAAAAAAAAAAAA/A",
            "mv_AAAAAAAAAAAAAAAAAAAA%2",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn copy_limit() {
        assert!(copyable(0, 0));
        assert!(copyable(10, 10));
        assert!(!copyable(11, 10));
        assert!(copyable(MAX_COPY, u64::MAX));
        assert!(!copyable(MAX_COPY + 1, u64::MAX), "never above one PUT");
    }

    #[test]
    fn run_budget() {
        assert!(run_goes_on(0, 0, 2, 100));
        assert!(run_goes_on(1, 99, 2, 100));
        assert!(!run_goes_on(1, 100, 2, 100), "the byte budget is spent");
        assert!(!run_goes_on(2, 0, 2, 100), "the blob budget is spent");
        assert!(run_goes_on(0, 0, 0, 0), "a run moves at least one blob");
        assert!(!run_goes_on(1, 0, 0, 0));
    }

    #[test]
    fn end() {
        assert!(finished(0, 0));
        assert!(!finished(1, 0));
        assert!(
            !finished(0, 1),
            "a reservation into the source may still commit"
        );
    }
}
