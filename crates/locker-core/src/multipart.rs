//! The multipart plan: how a file is cut into parts, shared by the Worker (which signs and
//! checks the parts) and the browser (which hashes each part while it hashes the file, before
//! it has asked the Worker anything).
//!
//! Rules of R2 and S3 this follows: every part but the last has the same size, at least
//! 5 MiB; the last may be shorter (not empty); at most 10,000 parts; S3 parts at most 5 GiB,
//! objects at most 5 TiB.
//!
//! The part size depends on the file's size alone, never on the transport: the browser does not
//! know which bucket (and so which transport) the Worker will choose until it has reserved, yet
//! it must know the part boundaries while it hashes. The transport only sets the largest file it
//! takes: parts through the Worker must stay well under the Workers request-body limit (100 MB
//! on Free/Pro), so they are at most [`WORKER_MAX_PART_SIZE`], and a file needing larger parts
//! is refused there (413) although the same file is fine straight to storage.

use crate::api::Transport;

const MIB: u64 = 1024 * 1024;

/// The fewest bytes of every part but the last, in R2 and S3.
pub const STORAGE_MIN_PART_SIZE: u64 = 5 * MIB;
/// The most parts of one upload, in R2 and S3.
pub const MAX_PARTS: u32 = 10_000;
/// The smallest part size locker uses: above storage's minimum, so a 300 MiB file is 38
/// requests rather than 60, while a lost part costs at most 8 MiB again.
pub const MIN_PART_SIZE: u64 = 8 * MIB;
/// Parts are multiples of this, so the size is easy to read in logs and tests.
pub const PART_SIZE_STEP: u64 = MIB;
/// The largest part through the Worker's data plane: about 67 MB, well under the 100 MB
/// request-body limit, with room for a slow client.
pub const WORKER_MAX_PART_SIZE: u64 = 64 * MIB;
/// The largest part S3 and R2 take.
pub const S3_MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The largest object S3 and R2 store (R2 documents 4.995 TiB; the part size rule keeps every
/// file up to here within 10,000 parts of at most 525 MiB).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// The largest file through the Worker: 10,000 parts of [`WORKER_MAX_PART_SIZE`], 625 GiB.
pub const WORKER_MAX_FILE_SIZE: u64 = MAX_PARTS as u64 * WORKER_MAX_PART_SIZE;
/// Files of this size and above are multipart unless the reserve request says otherwise; the
/// Worker's `LOCKER_MULTIPART_THRESHOLD` replaces it.
pub const DEFAULT_THRESHOLD: u64 = 64 * MIB;
/// The most parts one `POST /v1/uploads/{id}/parts` may ask URLs for.
pub const MAX_PARTS_PER_REQUEST: usize = 100;

/// Why a file cannot be uploaded in parts, or a part is not one of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An empty file has no parts (storage refuses an empty multipart upload); it is one PUT.
    #[error("an empty file is uploaded in one request, not in parts")]
    Empty,
    /// Larger than the transport can take in parts (413).
    #[error("{size} bytes is more than the {max} bytes a {transport} upload takes")]
    TooLarge {
        size: u64,
        max: u64,
        transport: &'static str,
    },
    /// Not a part number of this plan (1..=part_count).
    #[error("part {number} is not a part of this upload (1 to {count})")]
    NoSuchPart { number: u32, count: u32 },
    /// A part's declared or sent length is not the one the plan gives it.
    #[error("part {number} must be {expected} bytes, not {got}")]
    WrongSize {
        number: u32,
        expected: u64,
        got: u64,
    },
}

/// The part size for a file of `size` bytes: `max(8 MiB, ceil(size / 10,000))` rounded up to a
/// whole MiB. Any transport, any size: a caller who does not yet know the transport gets the
/// same answer as the Worker.
pub fn part_size(size: u64) -> u64 {
    let spread = size.div_ceil(u64::from(MAX_PARTS));
    spread
        .div_ceil(PART_SIZE_STEP)
        .saturating_mul(PART_SIZE_STEP)
        .max(MIN_PART_SIZE)
}

/// The largest file `transport` takes in parts.
pub fn max_file_size(transport: Transport) -> u64 {
    match transport {
        Transport::Worker => WORKER_MAX_FILE_SIZE,
        Transport::S3 => MAX_OBJECT_SIZE,
    }
}

/// Whether a file of `size` bytes is uploaded in parts: what the client asked (`requested`), or
/// else whether it reaches the Worker's `threshold`. An empty file never is.
pub fn is_multipart(size: u64, requested: Option<bool>, threshold: u64) -> bool {
    size > 0 && requested.unwrap_or(size >= threshold)
}

/// The threshold the Worker applies to a reservation that leaves `multipart` out: its own
/// (`threshold`), or, for a bucket where one request is verified at no cost (`one_request_free`:
/// the most bytes one request into it carries), the first size one request cannot carry, so
/// that every file up to it is one request. Such a bucket is an `s3` bucket with
/// `verify: checksum`: a single PUT is committed from the server's checksum, while parts are
/// read back and hashed at complete (seconds per GiB).
pub fn planned_threshold(threshold: u64, one_request_free: Option<u64>) -> u64 {
    match one_request_free {
        Some(max) => max.saturating_add(1).max(threshold),
        None => threshold,
    }
}

/// A file cut into parts: `part_count - 1` parts of `part_size` bytes and a last one of the rest
/// (1 to `part_size` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    size: u64,
    part_size: u64,
    part_count: u32,
}

impl PartPlan {
    /// The plan for `size` bytes through `transport`.
    pub fn new(size: u64, transport: Transport) -> Result<Self, PlanError> {
        if size == 0 {
            return Err(PlanError::Empty);
        }
        let max = max_file_size(transport);
        if size > max {
            return Err(PlanError::TooLarge {
                size,
                max,
                transport: transport.as_str(),
            });
        }
        let part_size = part_size(size);
        // size <= 5 TiB and part_size >= ceil(size / 10,000), so the count fits in u32.
        let part_count =
            u32::try_from(size.div_ceil(part_size)).map_err(|_| PlanError::TooLarge {
                size,
                max,
                transport: transport.as_str(),
            })?;
        Ok(Self {
            size,
            part_size,
            part_count,
        })
    }

    /// A plan as stored with a reservation, checked again: the part size must be the one
    /// [`part_size`] gives and the count must follow.
    pub fn from_parts(size: u64, part_size: u64, part_count: u32) -> Option<Self> {
        let plan = Self::new(size, Transport::S3).ok()?;
        (plan.part_size == part_size && plan.part_count == part_count).then_some(plan)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    pub fn part_count(&self) -> u32 {
        self.part_count
    }

    /// The byte range `[start, end)` of part `number` (1-based, as in S3).
    pub fn range(&self, number: u32) -> Result<(u64, u64), PlanError> {
        if number == 0 || number > self.part_count {
            return Err(PlanError::NoSuchPart {
                number,
                count: self.part_count,
            });
        }
        let start = u64::from(number - 1) * self.part_size;
        Ok((start, (start + self.part_size).min(self.size)))
    }

    /// The length of part `number`.
    pub fn part_len(&self, number: u32) -> Result<u64, PlanError> {
        self.range(number).map(|(start, end)| end - start)
    }

    /// Refuses a part whose length is not the plan's for its number.
    pub fn check_part(&self, number: u32, len: u64) -> Result<(), PlanError> {
        let expected = self.part_len(number)?;
        if len == expected {
            Ok(())
        } else {
            Err(PlanError::WrongSize {
                number,
                expected,
                got: len,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_is_the_floor_for_small_files_and_grows_by_whole_mib() {
        assert_eq!(part_size(1), MIN_PART_SIZE);
        assert_eq!(part_size(300 * MIB), MIN_PART_SIZE);
        // 10,000 parts of 8 MiB: the floor holds exactly to there...
        assert_eq!(part_size(10_000 * MIN_PART_SIZE), MIN_PART_SIZE);
        // ...and one byte more needs 9 MiB parts.
        assert_eq!(part_size(10_000 * MIN_PART_SIZE + 1), 9 * MIB);
        assert_eq!(part_size(WORKER_MAX_FILE_SIZE), WORKER_MAX_PART_SIZE);
        assert_eq!(part_size(MAX_OBJECT_SIZE), 525 * MIB);
        assert_eq!(part_size(u64::MAX) % MIB, 0);
    }

    #[test]
    fn every_size_up_to_the_maximum_fits_storage_rules() {
        let mut sizes = vec![1, MIB, 8 * MIB - 1, 8 * MIB, 8 * MIB + 1, 300 * MIB];
        for k in [
            1u64,
            2,
            3,
            7,
            1_000,
            9_999,
            10_000,
            10_001,
            123_457,
            1 << 20,
        ] {
            for s in [
                k * 10_000 * MIB / 3,
                k * 1_048_576_001,
                5 * (1u64 << 40) / k,
            ] {
                sizes.extend([s.saturating_sub(1), s, s + 1]);
            }
        }
        sizes.extend([
            WORKER_MAX_FILE_SIZE,
            WORKER_MAX_FILE_SIZE + 1,
            MAX_OBJECT_SIZE - 1,
            MAX_OBJECT_SIZE,
        ]);
        for size in sizes.into_iter().filter(|&s| s > 0 && s <= MAX_OBJECT_SIZE) {
            let plan = PartPlan::new(size, Transport::S3).unwrap();
            let (p, n) = (plan.part_size(), plan.part_count());
            assert!((1..=MAX_PARTS).contains(&n), "{size}: {n} parts");
            assert!(
                (STORAGE_MIN_PART_SIZE..=S3_MAX_PART_SIZE).contains(&p),
                "{size}: {p}"
            );
            let last = plan.part_len(n).unwrap();
            assert!((1..=p).contains(&last), "{size}: last part {last}");
            assert_eq!(u64::from(n - 1) * p + last, size, "{size}");
            assert_eq!(PartPlan::from_parts(size, p, n), Some(plan));
            match PartPlan::new(size, Transport::Worker) {
                Ok(w) => {
                    assert_eq!(w, plan, "the transport never changes the plan");
                    assert!(p <= WORKER_MAX_PART_SIZE);
                }
                Err(e) => {
                    assert!(size > WORKER_MAX_FILE_SIZE, "{size}: {e}");
                    assert!(p > WORKER_MAX_PART_SIZE);
                }
            }
        }
    }

    #[test]
    fn boundaries_of_a_small_plan() {
        let one = PartPlan::new(MIN_PART_SIZE, Transport::Worker).unwrap();
        assert_eq!((one.part_count(), one.part_len(1)), (1, Ok(MIN_PART_SIZE)));
        let two = PartPlan::new(2 * MIN_PART_SIZE, Transport::Worker).unwrap();
        assert_eq!(two.part_count(), 2);
        assert_eq!(two.range(2), Ok((MIN_PART_SIZE, 2 * MIN_PART_SIZE)));
        let three = PartPlan::new(2 * MIN_PART_SIZE + 1, Transport::Worker).unwrap();
        assert_eq!(three.part_count(), 3);
        assert_eq!(
            three.range(3),
            Ok((2 * MIN_PART_SIZE, 2 * MIN_PART_SIZE + 1))
        );
        assert_eq!(three.check_part(3, 1), Ok(()));
        assert_eq!(
            three.check_part(3, 2),
            Err(PlanError::WrongSize {
                number: 3,
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            three.check_part(1, MIN_PART_SIZE - 1),
            Err(PlanError::WrongSize {
                number: 1,
                expected: MIN_PART_SIZE,
                got: MIN_PART_SIZE - 1
            })
        );
        for number in [0, 4, u32::MAX] {
            assert_eq!(
                three.range(number),
                Err(PlanError::NoSuchPart { number, count: 3 })
            );
        }
        let small = PartPlan::new(5, Transport::S3).unwrap();
        assert_eq!((small.part_count(), small.part_size()), (1, MIN_PART_SIZE));
        assert_eq!(small.part_len(1), Ok(5));
    }

    #[test]
    fn refusals() {
        assert_eq!(PartPlan::new(0, Transport::Worker), Err(PlanError::Empty));
        assert_eq!(
            PartPlan::new(WORKER_MAX_FILE_SIZE + 1, Transport::Worker),
            Err(PlanError::TooLarge {
                size: WORKER_MAX_FILE_SIZE + 1,
                max: WORKER_MAX_FILE_SIZE,
                transport: "worker"
            })
        );
        assert!(PartPlan::new(WORKER_MAX_FILE_SIZE + 1, Transport::S3).is_ok());
        assert!(matches!(
            PartPlan::new(MAX_OBJECT_SIZE + 1, Transport::S3),
            Err(PlanError::TooLarge { .. })
        ));
        assert!(PartPlan::new(u64::MAX, Transport::S3).is_err());
        // A stored plan whose numbers do not follow from the size is not a plan.
        assert_eq!(PartPlan::from_parts(20 * MIB, 8 * MIB, 2), None);
        assert_eq!(PartPlan::from_parts(20 * MIB, 10 * MIB, 2), None);
        assert!(PartPlan::from_parts(20 * MIB, 8 * MIB, 3).is_some());
        assert_eq!(PartPlan::from_parts(0, 8 * MIB, 1), None);
    }

    #[test]
    fn multipart_by_threshold_unless_asked() {
        assert!(!is_multipart(
            DEFAULT_THRESHOLD - 1,
            None,
            DEFAULT_THRESHOLD
        ));
        assert!(is_multipart(DEFAULT_THRESHOLD, None, DEFAULT_THRESHOLD));
        assert!(is_multipart(1, Some(true), DEFAULT_THRESHOLD));
        assert!(!is_multipart(
            DEFAULT_THRESHOLD * 2,
            Some(false),
            DEFAULT_THRESHOLD
        ));
        assert!(!is_multipart(0, Some(true), DEFAULT_THRESHOLD));
        assert!(!is_multipart(0, None, 0));
    }

    #[test]
    fn a_bucket_verifying_one_request_free_plans_one_request_up_to_its_limit() {
        let gib = 1024 * MIB;
        let five_gb = 5_000_000_000;
        let free = planned_threshold(DEFAULT_THRESHOLD, Some(five_gb));
        assert!(!is_multipart(gib, None, free));
        assert!(!is_multipart(five_gb, None, free));
        assert!(is_multipart(five_gb + 1, None, free));
        // Asked for, parts are parts, and one request is one request.
        assert!(is_multipart(gib, Some(true), free));
        assert!(!is_multipart(gib, Some(false), free));
        // Other buckets keep the Worker's threshold.
        let plain = planned_threshold(DEFAULT_THRESHOLD, None);
        assert_eq!(plain, DEFAULT_THRESHOLD);
        assert!(is_multipart(gib, None, plain));
        // A threshold above the single-request limit stays as it is.
        assert_eq!(planned_threshold(8 * gib, Some(five_gb)), 8 * gib);
        assert_eq!(planned_threshold(1, Some(u64::MAX)), u64::MAX);
    }
}
