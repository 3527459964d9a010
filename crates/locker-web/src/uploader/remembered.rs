//! `rememberDigests`: the SHA-256 of a file hashed once is remembered under its fingerprint (name,
//! `webkitRelativePath`, size, `lastModified`, type), so the same file picked again (this
//! origin, this browser profile, after a reload too) is not read a second time. rsync and rclone
//! decide "unchanged" the same way, by size and modification time.
//!
//! The trade-off, and why it is opt-in: a file rewritten in place with its size and
//! modification time kept reads as unchanged. Its old digest is then reserved; when the tenant
//! has those bytes the upload is answered `deduplicated` with the old bytes. When it does not,
//! the bytes sent do not match and storage or the Worker refuses them: the Uploader forgets the
//! fingerprint and hashes the file for real (once), see [`wrong_bytes`].
//!
//! Kept in the IndexedDB store of the resume records ([`super::memory`]) under [`PREFIX`], the
//! newest [`MAX_KEPT`] only. Nothing but digests and the fingerprint is kept (no token, no URL).
//! Best effort like those records: storage that throws (some private modes) means nothing is
//! remembered and every file is hashed.

use locker_core::client::code;
use locker_core::Sha256Hex;
use wasm_bindgen::JsCast;
use web_sys::{Blob, File, IdbKeyRange};

use super::memory::{self, settled};
use crate::error::LockerError;
use crate::js::get;

/// The keys of remembered digests start with this; nothing else in the store does.
pub(super) const PREFIX: &str = "sha256:";
/// Just after every key with [`PREFIX`] (`:` + 1), the end of their key range.
const PREFIX_END: &str = "sha256;";
/// Fingerprints kept at most; the oldest remembered go first.
const MAX_KEPT: usize = 10_000;

/// What is remembered of one file. Kept as text, `at part_size sha256 part...` separated by
/// spaces: the derived serde (JSON) encoding it replaced, with the sort `oldest` no longer
/// does, weighed 3.1 KB gzip of the module. Nothing of it can hold a space (integers, hex).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Known {
    pub(super) sha256: String,
    /// The part size `parts` are the digests for; 0 when the file was hashed whole.
    pub(super) part_size: u64,
    pub(super) parts: Vec<String>,
    /// When it was remembered (ms since the epoch): the newest are kept.
    pub(super) at: u64,
}

impl Known {
    /// The text kept, read back by [`Known::decode`].
    pub(super) fn encode(&self) -> String {
        let mut text = format!("{} {} {}", self.at, self.part_size, self.sha256);
        for part in &self.parts {
            text.push(' ');
            text.push_str(part);
        }
        text
    }

    /// What [`Known::encode`] wrote; `None` for anything else, such as an entry of the JSON
    /// encoding before it (read as nothing remembered: the file is hashed and kept anew).
    pub(super) fn decode(text: &str) -> Option<Self> {
        let mut fields = text.split(' ');
        let at = fields.next()?.parse().ok()?;
        let part_size = fields.next()?.parse().ok()?;
        let sha256 = fields.next()?.to_owned();
        Some(Self {
            sha256,
            part_size,
            parts: fields.map(str::to_owned).collect(),
            at,
        })
    }

    /// The file's digest and its parts' for a file of `size` bytes hashed whole (`part_size`
    /// `None`) or in parts of `part_size`; `None` when what is kept does not serve (another part
    /// size, a wrong count of parts, something that is not a digest).
    pub(super) fn usable(
        &self,
        size: u64,
        part_size: Option<u64>,
    ) -> Option<(String, Vec<String>)> {
        let digest = |d: &String| Sha256Hex::parse(d).is_ok();
        if !digest(&self.sha256) {
            return None;
        }
        match part_size {
            None => Some((self.sha256.clone(), Vec::new())),
            Some(ps)
                if ps > 0
                    && ps == self.part_size
                    && u64::try_from(self.parts.len()).ok() == Some(size.div_ceil(ps))
                    && self.parts.iter().all(digest) =>
            {
                Some((self.sha256.clone(), self.parts.clone()))
            }
            Some(_) => None,
        }
    }
}

/// The key a file's digest is remembered under: its fingerprint, as a JSON array after
/// [`PREFIX`] (unambiguous whatever the name holds).
pub(super) fn key_of(
    name: &str,
    relative_path: &str,
    size: u64,
    last_modified: u64,
    content_type: &str,
) -> String {
    let fingerprint = (name, relative_path, size, last_modified, content_type);
    // A tuple of strings and integers always encodes.
    let json = serde_json::to_string(&fingerprint).unwrap_or_default();
    [PREFIX, &json].concat()
}

/// The key for `file`: only a `File` has a fingerprint (a Blob has no name or modification time).
pub(super) fn fingerprint(file: &Blob) -> Option<String> {
    let file = file.dyn_ref::<File>()?;
    Some(key_of(
        &file.name(),
        &get(file, "webkitRelativePath")
            .as_string()
            .unwrap_or_default(),
        // A Blob's size is a whole number of bytes.
        file.size() as u64,
        // Whole milliseconds since the epoch.
        file.last_modified() as u64,
        &file.type_(),
    ))
}

/// Whether `e` says the bytes sent are not those of the digest reserved: the Worker's
/// `sha256_mismatch` (its data plane refusing a body, or a complete finding other bytes stored)
/// or an S3 server refusing the signed checksum.
pub(super) fn wrong_bytes(e: &LockerError) -> bool {
    e.code == "sha256_mismatch"
        || (e.code == code::STORAGE_REFUSED
            && ["BadDigest", "XAmzContentSHA256Mismatch"]
                .iter()
                .any(|c| e.message.contains(c)))
}

/// The keys to drop so that only the `keep` newest of `entries` (key, when remembered) stay: all
/// remembered before the newest `keep` began, found by bisecting the times (no sort: its code
/// would weigh more than the module needs for a rare clean-up). Ties at the cut-off stay.
pub(super) fn oldest(entries: Vec<(String, u64)>, keep: usize) -> Vec<String> {
    let newer_than = |t: u64| entries.iter().filter(|e| e.1 >= t).count();
    if entries.len() <= keep {
        return Vec::new();
    }
    // The latest cut-off `t` that still keeps at least `keep` entries at or after it.
    let (mut low, mut high) = (0_u64, u64::MAX);
    while low < high {
        let mid = low + (high - low) / 2 + 1;
        if newer_than(mid) >= keep {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    entries
        .into_iter()
        .filter(|e| e.1 < low)
        .map(|e| e.0)
        .collect()
}

/// The digests remembered under `key` (none: nothing remembered) for a file of `size` bytes
/// hashed whole (`part_size` `None`) or in parts: the file's and each part's.
pub(super) async fn recall(
    key: Option<&str>,
    size: u64,
    part_size: Option<u64>,
) -> Option<(String, Vec<String>)> {
    let key = key?;
    let store = memory::store(false).await.ok()?;
    let request = store.get(&key.into()).ok()?;
    let text = settled(&request).await.ok()?.as_string()?;
    Known::decode(&text)?.usable(size, part_size)
}

/// Remembers under `key` (none: nothing is) the digests of a file just hashed: the file's, and
/// each part's of `part_size` (`None`: hashed whole).
pub(super) async fn keep(
    key: Option<&str>,
    sha256: &str,
    part_size: Option<u64>,
    parts: &[String],
) {
    let Some(key) = key else {
        return;
    };
    let known = Known {
        sha256: sha256.to_owned(),
        part_size: part_size.unwrap_or(0),
        parts: parts.to_vec(),
        // Whole milliseconds since the epoch.
        at: js_sys::Date::now() as u64,
    };
    let text = known.encode();
    if let Ok(store) = memory::store(true).await {
        if let Ok(request) = store.put_with_key(&text.into(), &key.into()) {
            let _ = settled(&request).await;
        }
    }
}

/// Forgets what is remembered under `key`.
pub(super) async fn forget(key: &str) {
    memory::forget(key).await;
}

/// Drops the oldest remembered digests beyond [`MAX_KEPT`]. Only counts them unless there are
/// too many.
pub(super) async fn prune() {
    let Ok(range) = IdbKeyRange::bound(&PREFIX.into(), &PREFIX_END.into()) else {
        return;
    };
    let Ok(store) = memory::store(false).await else {
        return;
    };
    let Ok(count) = store.count_with_key(&range) else {
        return;
    };
    let count = settled(&count).await.ok().and_then(|c| c.as_f64());
    if count.is_none_or(|c| c <= MAX_KEPT as f64) {
        return;
    }
    let Ok(store) = memory::store(false).await else {
        return;
    };
    let (Ok(keys), Ok(values)) = (
        store.get_all_keys_with_key(&range),
        store.get_all_with_key(&range),
    ) else {
        return;
    };
    let (Ok(keys), Ok(values)) = (settled(&keys).await, settled(&values).await) else {
        return;
    };
    let (Ok(keys), Ok(values)) = (
        keys.dyn_into::<js_sys::Array>(),
        values.dyn_into::<js_sys::Array>(),
    ) else {
        return;
    };
    // Both lists come in key order from one transaction: the n-th value is the n-th key's. An
    // entry that does not read counts as the oldest.
    let entries = keys
        .iter()
        .zip(values.iter())
        .filter_map(|(k, v)| {
            let at = v
                .as_string()
                .and_then(|t| Known::decode(&t))
                .map_or(0, |k| k.at);
            Some((k.as_string()?, at))
        })
        .collect();
    for key in oldest(entries, MAX_KEPT) {
        forget(&key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_key_is_the_whole_fingerprint_and_unambiguous() {
        assert_eq!(
            key_of("a.txt", "dir/a.txt", 3, 1_700_000_000_000, "text/plain"),
            r#"sha256:["a.txt","dir/a.txt",3,1700000000000,"text/plain"]"#
        );
        // A name holding what would be a separator stays one field.
        assert_ne!(key_of("a\",\"b", "", 1, 1, ""), key_of("a", "b", 1, 1, ""));
        for other in [
            key_of("b.txt", "dir/a.txt", 3, 1, "text/plain"),
            key_of("a.txt", "other/a.txt", 3, 1, "text/plain"),
            key_of("a.txt", "dir/a.txt", 4, 1, "text/plain"),
            key_of("a.txt", "dir/a.txt", 3, 2, "text/plain"),
            key_of("a.txt", "dir/a.txt", 3, 1, "text/html"),
        ] {
            assert_ne!(other, key_of("a.txt", "dir/a.txt", 3, 1, "text/plain"));
            assert!(other.starts_with(PREFIX) && other.as_str() < PREFIX_END);
        }
    }

    #[test]
    fn a_digest_serves_a_whole_hash_and_parts_only_of_the_same_size() {
        let whole = Known {
            sha256: A.into(),
            part_size: 0,
            parts: Vec::new(),
            at: 1,
        };
        assert_eq!(whole.usable(10, None), Some((A.into(), Vec::new())));
        assert_eq!(whole.usable(10, Some(8)), None);
        let parts = Known {
            sha256: A.into(),
            part_size: 8,
            parts: vec![B.into(), B.into()],
            at: 1,
        };
        assert_eq!(
            parts.usable(10, Some(8)),
            Some((A.into(), vec![B.into(), B.into()]))
        );
        assert_eq!(parts.usable(10, Some(4)), None, "another part size");
        assert_eq!(parts.usable(20, Some(8)), None, "another count of parts");
        assert_eq!(parts.usable(10, None).map(|u| u.0), Some(A.into()));
        let bad = Known {
            sha256: "not a digest".into(),
            ..whole
        };
        assert_eq!(bad.usable(10, None), None);
    }

    #[test]
    fn only_refusals_of_the_bytes_count_as_wrong_bytes() {
        let e = |c: &str, m: &str| LockerError::new(c, m);
        assert!(wrong_bytes(&e("sha256_mismatch", "")));
        assert!(wrong_bytes(&e(
            code::STORAGE_REFUSED,
            "the storage server refused the transfer (BadDigest: no)"
        )));
        assert!(!wrong_bytes(&e(
            code::STORAGE_REFUSED,
            "the storage server refused the transfer (AccessDenied)"
        )));
        assert!(!wrong_bytes(&e(code::NETWORK, "BadDigest")));
        assert!(!wrong_bytes(&e("size_mismatch", "")));
    }

    #[test]
    fn what_is_kept_reads_back() {
        let known = Known {
            sha256: A.into(),
            part_size: 8,
            parts: vec![B.into(), A.into()],
            at: 1_700_000_000_123,
        };
        assert_eq!(Known::decode(&known.encode()), Some(known));
        let whole = Known {
            sha256: A.into(),
            part_size: 0,
            parts: Vec::new(),
            at: 5,
        };
        assert_eq!(whole.encode(), ["5 0 ", A].concat());
        assert_eq!(Known::decode(&whole.encode()), Some(whole));
        assert_eq!(Known::decode("x 0 abc"), None);
        assert_eq!(Known::decode("5"), None);
        // An entry of the JSON encoding before this one reads as nothing remembered.
        let json = [
            r#"{"sha256":""#,
            A,
            r#"","part_size":0,"parts":[],"at":5.0}"#,
        ]
        .concat();
        assert_eq!(Known::decode(&json), None);
    }

    #[test]
    fn the_oldest_go_beyond_the_bound() {
        let entries = vec![
            ("c".to_owned(), 3),
            ("a".to_owned(), 1),
            ("d".to_owned(), 0),
            ("b".to_owned(), 2),
        ];
        assert_eq!(oldest(entries.clone(), 2), vec!["a", "d"]);
        assert_eq!(oldest(entries.clone(), 4), Vec::<String>::new());
        assert_eq!(oldest(entries.clone(), 1), vec!["a", "d", "b"]);
        assert_eq!(oldest(entries, 0).len(), 4);
        // Remembered in the same millisecond: both stay rather than one at random.
        let tied = vec![
            ("x".to_owned(), 7),
            ("y".to_owned(), 7),
            ("z".to_owned(), 1),
        ];
        assert_eq!(oldest(tied, 1), vec!["z"]);
    }

    #[test]
    fn the_bisection_drops_what_a_sort_by_time_would() {
        // Distinct times, in no order, against the sort it replaced.
        let entries: Vec<(String, u64)> = (0..200_u64)
            .map(|i| (i.to_string(), (i * 7919) % 1009 + 1_700_000_000_000))
            .collect();
        for keep in [0, 1, 10, 199, 200, 500] {
            let mut sorted = entries.clone();
            sorted.sort_by_key(|e| e.1);
            let mut expected: Vec<String> = sorted
                .into_iter()
                .take(entries.len().saturating_sub(keep))
                .map(|e| e.0)
                .collect();
            let mut dropped = oldest(entries.clone(), keep);
            expected.sort();
            dropped.sort();
            assert_eq!(dropped, expected, "keep {keep}");
        }
    }
}
