//! Resuming an upload in parts after a reload: what the browser remembers of one (in
//! IndexedDB, as a [`Record`]), how it finds it again for a file picked again ([`record_key`]),
//! and what it does with the Worker's account of the reservation ([`decide`]).
//!
//! A record holds what identifies the file and the reservation, and the digests computed while
//! hashing (so a file found again is not read twice): never a token or a signed URL, which
//! would let anyone reading the browser's storage write to the bucket. The Worker is the
//! authority on which parts are stored; the record's own list is only a note.

use serde::{Deserialize, Serialize};

use crate::api::{UploadInfo, UploadState};
use crate::multipart::PartPlan;

/// A reservation this close to its end (seconds) is not resumed: its remaining parts might not
/// all be sent before their URLs stop being signed, so a fresh one is better.
pub const EXPIRY_MARGIN_S: u64 = 60;

/// One upload in parts as the browser remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `up_...` of the reservation.
    pub upload_id: String,
    /// SHA-256 of the whole file, 64 hex digits.
    pub sha256: String,
    pub size: u64,
    pub part_size: u64,
    /// SHA-256 of each part in order (part `n` at index `n - 1`).
    pub part_sha256: Vec<String>,
    /// Parts known stored when last written (a note; the Worker's list is what counts).
    pub parts_done: Vec<u32>,
    /// When the reservation's URLs stop being signed, seconds since the epoch: the record is
    /// useless from then on ([`Record::is_stale`]).
    pub expires_at: u64,
}

impl Record {
    /// Whether the record can be dropped: its reservation can no longer be resumed (`now_s`,
    /// seconds since the epoch, passed in).
    pub fn is_stale(&self, now_s: u64) -> bool {
        now_s.saturating_add(EXPIRY_MARGIN_S) >= self.expires_at
    }
}

/// The key a record is stored under: the same file (name, size, `lastModified`) uploaded to the
/// same place (endpoint, namespace, the path asked for, if any). A file edited since has
/// another `lastModified` and so no record: it is hashed afresh.
pub fn record_key(
    endpoint: &str,
    namespace: &str,
    path: Option<&str>,
    name: &str,
    size: u64,
    last_modified_ms: u64,
) -> String {
    // A JSON array: no choice of separator can be confused with a part of a name. Encoding a
    // tuple of strings and integers cannot fail (and keeps float formatting and serde_json's
    // `Value` out of the browser module).
    serde_json::to_string(&(endpoint, namespace, path, name, size, last_modified_ms))
        .unwrap_or_default()
}

/// What to do with a remembered upload, given the Worker's `GET /v1/uploads/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The reservation stands: send the `missing` parts only. `stored` parts (`stored_bytes`
    /// bytes) are kept.
    Resume {
        plan: PartPlan,
        missing: Vec<u32>,
        stored: u32,
        stored_bytes: u64,
    },
    /// It cannot be resumed (no longer pending, about to expire, or not the same upload): drop
    /// the record and reserve afresh, with the digests it holds.
    StartOver,
}

/// Whether `record` can go on as `info` says the reservation stands, at `now_s`. A part counts
/// as stored only if the Worker lists it with the plan's length and the digest remembered for
/// it: a part stored with other bytes is sent again (and replaces the declared digest).
pub fn decide(record: &Record, info: &UploadInfo, now_s: u64) -> Decision {
    let same = info.upload_id == record.upload_id
        && info.sha256 == record.sha256
        && info.size == record.size;
    let Some(mp) = info.multipart.as_ref() else {
        return Decision::StartOver;
    };
    if !same
        || info.state != UploadState::Pending
        || now_s.saturating_add(EXPIRY_MARGIN_S) >= info.expires_at
        || mp.part_size != record.part_size
    {
        return Decision::StartOver;
    }
    let Some(plan) = PartPlan::from_parts(record.size, mp.part_size, mp.part_count) else {
        return Decision::StartOver;
    };
    if usize::try_from(plan.part_count()).ok() != Some(record.part_sha256.len()) {
        return Decision::StartOver;
    }
    let mut missing = Vec::new();
    let (mut stored, mut stored_bytes) = (0, 0);
    for (number, digest) in (1..=plan.part_count()).zip(&record.part_sha256) {
        let len = plan.part_len(number).unwrap_or(0);
        let kept = mp
            .parts
            .iter()
            .any(|p| p.number == number && p.size == len && p.sha256 == *digest);
        if kept {
            stored += 1;
            stored_bytes += len;
        } else {
            missing.push(number);
        }
    }
    Decision::Resume {
        plan,
        missing,
        stored,
        stored_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{MultipartInfo, StoredPart, Transport};

    const MIB: u64 = 1024 * 1024;
    const SIZE: u64 = 20 * MIB;

    fn digest(n: u32) -> String {
        format!("{n:064x}")
    }

    fn record() -> Record {
        Record {
            upload_id: "up_1".into(),
            sha256: "ab".repeat(32),
            size: SIZE,
            part_size: 8 * MIB,
            part_sha256: (1..=3).map(digest).collect(),
            parts_done: vec![1],
            expires_at: 10_000,
        }
    }

    fn info(parts: &[(u32, u64, String)]) -> UploadInfo {
        UploadInfo {
            upload_id: "up_1".into(),
            state: UploadState::Pending,
            locker_ref: "locker://demo/big.bin".into(),
            sha256: "ab".repeat(32),
            size: SIZE,
            content_type: "application/octet-stream".into(),
            expires_at: 10_000,
            multipart: Some(MultipartInfo {
                transport: Transport::Worker,
                part_size: 8 * MIB,
                part_count: 3,
                parts: parts
                    .iter()
                    .map(|(number, size, sha256)| StoredPart {
                        number: *number,
                        size: *size,
                        sha256: sha256.clone(),
                    })
                    .collect(),
            }),
        }
    }

    fn resumed(d: Decision) -> (Vec<u32>, u32, u64) {
        match d {
            Decision::Resume {
                missing,
                stored,
                stored_bytes,
                ..
            } => (missing, stored, stored_bytes),
            Decision::StartOver => panic!("started over"),
        }
    }

    #[test]
    fn only_the_parts_not_stored_are_sent() {
        let r = record();
        assert_eq!(resumed(decide(&r, &info(&[]), 100)), (vec![1, 2, 3], 0, 0));
        let two = info(&[(1, 8 * MIB, digest(1)), (3, 4 * MIB, digest(3))]);
        assert_eq!(resumed(decide(&r, &two, 100)), (vec![2], 2, 12 * MIB));
        let all = info(&[
            (1, 8 * MIB, digest(1)),
            (2, 8 * MIB, digest(2)),
            (3, 4 * MIB, digest(3)),
        ]);
        assert_eq!(resumed(decide(&r, &all, 100)), (vec![], 3, SIZE));
    }

    #[test]
    fn a_part_stored_with_other_bytes_or_length_is_sent_again() {
        let r = record();
        let odd = info(&[(1, 8 * MIB, digest(9)), (2, 7 * MIB, digest(2))]);
        assert_eq!(resumed(decide(&r, &odd, 100)), (vec![1, 2, 3], 0, 0));
    }

    #[test]
    fn an_ended_expiring_or_different_reservation_starts_over() {
        let r = record();
        for state in [
            UploadState::Committed,
            UploadState::Aborted,
            UploadState::Expired,
            UploadState::Verifying,
        ] {
            let i = UploadInfo { state, ..info(&[]) };
            assert_eq!(decide(&r, &i, 100), Decision::StartOver, "{state:?}");
        }
        // Within a minute of its end: a fresh reservation rather than a race with the clock.
        assert_eq!(decide(&r, &info(&[]), 10_000 - 60), Decision::StartOver);
        assert!(matches!(
            decide(&r, &info(&[]), 10_000 - 61),
            Decision::Resume { .. }
        ));
        let other = UploadInfo {
            sha256: "cd".repeat(32),
            ..info(&[])
        };
        assert_eq!(decide(&r, &other, 100), Decision::StartOver);
        let single = UploadInfo {
            multipart: None,
            ..info(&[])
        };
        assert_eq!(decide(&r, &single, 100), Decision::StartOver);
        // A record whose digests do not fit the plan is not trusted.
        let short = Record {
            part_sha256: vec![digest(1)],
            ..record()
        };
        assert_eq!(decide(&short, &info(&[]), 100), Decision::StartOver);
        let resized = Record {
            part_size: 9 * MIB,
            ..record()
        };
        assert_eq!(decide(&resized, &info(&[]), 100), Decision::StartOver);
    }

    #[test]
    fn records_go_stale_with_their_reservation() {
        let r = record();
        assert!(!r.is_stale(100));
        assert!(!r.is_stale(10_000 - 61));
        assert!(r.is_stale(10_000 - 60));
        assert!(r.is_stale(u64::MAX));
    }

    #[test]
    fn the_key_tells_files_and_places_apart() {
        let k = |path, name: &str, size, modified| {
            record_key("https://f.example", "demo", path, name, size, modified)
        };
        let base = k(None, "a.bin", 5, 1);
        assert_eq!(base, r#"["https://f.example","demo",null,"a.bin",5,1]"#);
        for other in [
            k(Some("a.bin"), "a.bin", 5, 1),
            k(None, "b.bin", 5, 1),
            k(None, "a.bin", 6, 1),
            k(None, "a.bin", 5, 2),
            record_key("https://f.example", "other", None, "a.bin", 5, 1),
        ] {
            assert_ne!(base, other);
        }
        // A name that looks like the separator of a joined key cannot collide.
        assert_ne!(k(None, "a\",\"b", 5, 1), k(None, "a", 5, 1));
    }

    #[test]
    fn a_record_round_trips_as_json() {
        let r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("token") && !text.contains("url"), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }
}
