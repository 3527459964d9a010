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
}
