//! Content hashes as they travel through the API: 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest in the one spelling locker accepts: 64 lowercase hex digits.
///
/// Upper-case input is refused rather than folded, so one digest has exactly one key and one
/// row; a client that sends `ABC...` learns at once instead of creating a near-duplicate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hex([u8; 32]);

/// Why a string is not a [`Sha256Hex`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The string does not have exactly 64 characters.
    #[error("sha256 must be 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character is not one of `0-9a-f` (upper case is refused too).
    #[error("sha256 must be lowercase hex (0-9, a-f)")]
    NotLowerHex,
}

impl Sha256Hex {
    /// Parses 64 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, HashError> {
        if s.len() != 64 {
            return Err(HashError::Length(s.chars().count()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }

    /// Wraps a raw 32-byte digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest of `data`, computed in one go (small inputs; large ones stream elsewhere).
    pub fn digest(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn nibble(c: u8) -> Result<u8, HashError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(HashError::NotLowerHex),
    }
}

/// Lowercase hex of any byte string.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({self})")
    }
}

impl FromStr for Sha256Hex {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Sha256Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Files of at most this many bytes are hashed whole by the browser's own SHA-256 (WebCrypto)
/// where the page has it: up to here holding the file in memory costs little and native code
/// beats any wasm (the bench's hash section, "which hasher by file size"). Larger files, and
/// files sent in parts (which need each part's digest from the same read), are streamed.
pub const WHOLE_DIGEST_MAX: u64 = 64 << 20;

/// How the browser module hashes a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hasher {
    /// Read whole, one call of the platform's SHA-256.
    Whole,
    /// Streamed through the wasm SHA-256 in a hash worker, every part's digest too.
    Streaming,
}

/// The hasher for a file of `size` bytes; `in_parts`: it is uploaded in parts; `whole`:
/// a whole-file digest is available (a secure context with WebCrypto) and allowed.
pub fn hasher_for(size: u64, in_parts: bool, whole: bool) -> Hasher {
    if whole && !in_parts && size <= WHOLE_DIGEST_MAX {
        Hasher::Whole
    } else {
        Hasher::Streaming
    }
}

/// The largest file hashed whole that waits for no hash worker: such files are hashed side
/// by side with each other (up to [`SMALL_WHOLE_AT_ONCE`] page-wide, so at most 64 MiB is
/// read into memory at once) and beside the files the workers stream. Reading a small file
/// and handing it to the platform's digest is mostly waiting (one file after another, 4 KiB
/// files hash at a tenth of the speed of 8 MiB ones), and it keeps no worker busy.
pub const SMALL_WHOLE_MAX: u64 = 8 << 20;

/// Small files hashed whole at once, page-wide (see [`SMALL_WHOLE_MAX`]).
pub const SMALL_WHOLE_AT_ONCE: usize = 8;

/// Which turn a file waits for before it is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashQueue {
    /// A small file hashed whole: the page-wide turns of [`SMALL_WHOLE_AT_ONCE`].
    SmallWhole,
    /// A hash worker's turn (the Uploader's `hashWorkers`), also taken by larger files hashed
    /// whole, so that the memory they are read into stays bounded by the workers' count.
    Workers,
}

/// The queue of a file of `size` bytes that `hasher` hashes.
pub fn hash_queue(hasher: Hasher, size: u64) -> HashQueue {
    if hasher == Hasher::Whole && size <= SMALL_WHOLE_MAX {
        HashQueue::SmallWhole
    } else {
        HashQueue::Workers
    }
}

/// Hash workers by default for a machine with `cores` logical cores (the browser's
/// `hardwareConcurrency`, absent or nonsense read as 1): one core left for the page and the
/// uploads, at most 4 (beyond that reading the files, not hashing them, is the limit), at
/// least 1.
pub fn default_hash_workers(cores: Option<f64>) -> u32 {
    let cores = cores.filter(|c| c.is_finite() && *c >= 1.0).unwrap_or(1.0);
    // Clamped to 1..=4 first: the cast is exact.
    (cores - 1.0).clamp(1.0, 4.0).floor() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf 'abc' | sha256sum`
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn digest_matches_sha256sum() {
        assert_eq!(Sha256Hex::digest(b"abc").to_string(), ABC);
    }

    #[test]
    fn parse_round_trips() {
        let h = Sha256Hex::parse(ABC).unwrap();
        assert_eq!(h.to_string(), ABC);
        assert_eq!(h, Sha256Hex::digest(b"abc"));
    }

    #[test]
    fn refuses_upper_case_short_and_non_hex() {
        assert_eq!(
            Sha256Hex::parse(&ABC.to_uppercase()),
            Err(HashError::NotLowerHex)
        );
        assert_eq!(Sha256Hex::parse("abc"), Err(HashError::Length(3)));
        let mut bad = ABC.to_string();
        bad.replace_range(0..1, "g");
        assert_eq!(Sha256Hex::parse(&bad), Err(HashError::NotLowerHex));
        // 64 bytes but multi-byte characters: refused, and no panic on char boundaries.
        let wide = "é".repeat(32);
        assert_eq!(Sha256Hex::parse(&wide), Err(HashError::NotLowerHex));
    }

    #[test]
    fn serde_uses_hex_and_validates() {
        let h: Sha256Hex = serde_json::from_str(&format!("\"{ABC}\"")).unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{ABC}\""));
        assert!(serde_json::from_str::<Sha256Hex>("\"00\"").is_err());
    }

    #[test]
    fn whole_digest_only_for_small_files_in_one_request_where_available() {
        let max = WHOLE_DIGEST_MAX;
        assert_eq!(hasher_for(0, false, true), Hasher::Whole);
        assert_eq!(hasher_for(max, false, true), Hasher::Whole);
        assert_eq!(hasher_for(max + 1, false, true), Hasher::Streaming);
        assert_eq!(hasher_for(4096, true, true), Hasher::Streaming);
        assert_eq!(hasher_for(4096, false, false), Hasher::Streaming);
    }

    #[test]
    fn small_whole_digests_wait_for_no_worker() {
        assert_eq!(hash_queue(Hasher::Whole, 0), HashQueue::SmallWhole);
        assert_eq!(
            hash_queue(Hasher::Whole, SMALL_WHOLE_MAX),
            HashQueue::SmallWhole
        );
        assert_eq!(
            hash_queue(Hasher::Whole, SMALL_WHOLE_MAX + 1),
            HashQueue::Workers
        );
        assert_eq!(hash_queue(Hasher::Streaming, 4096), HashQueue::Workers);
        // At most 64 MiB read whole at once page-wide.
        assert!(SMALL_WHOLE_MAX * SMALL_WHOLE_AT_ONCE as u64 <= 64 << 20);
    }

    #[test]
    fn hash_workers_leave_a_core_and_stay_within_one_to_four() {
        assert_eq!(default_hash_workers(None), 1);
        assert_eq!(default_hash_workers(Some(1.0)), 1);
        assert_eq!(default_hash_workers(Some(2.0)), 1);
        assert_eq!(default_hash_workers(Some(3.0)), 2);
        assert_eq!(default_hash_workers(Some(5.0)), 4);
        assert_eq!(default_hash_workers(Some(64.0)), 4);
        assert_eq!(default_hash_workers(Some(f64::NAN)), 1);
        assert_eq!(default_hash_workers(Some(0.0)), 1);
    }
}
