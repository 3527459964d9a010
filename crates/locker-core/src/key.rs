//! Object keys. Only the Worker builds them, from a tenant and a verified digest, so a client
//! can never choose where its bytes land or reach another tenant's prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::Sha256Hex;

/// A tenant id: 1..=63 bytes of `a-z 0-9 -`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tenant(String);

/// Why a string is not a [`Tenant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// Empty, too long, or a character outside `a-z 0-9 -` (or a leading `-`).
    #[error(
        "tenant must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
    )]
    Invalid,
}

impl Tenant {
    /// Validates a tenant id.
    pub fn parse(s: &str) -> Result<Self, TenantError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with('-')
            && s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TenantError::Invalid)
        }
    }

    /// The tenant id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tenant {
    type Error = TenantError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Tenant> for String {
    fn from(t: Tenant) -> Self {
        t.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The storage key of a blob: `t/{tenant}/sha256/{sha256}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The one key where `tenant`'s bytes with digest `sha256` live.
    pub fn for_blob(tenant: &Tenant, sha256: &Sha256Hex) -> Self {
        Self(format!("t/{tenant}/sha256/{sha256}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_key_layout() {
        let t = Tenant::parse("acme").unwrap();
        let h = Sha256Hex::digest(b"abc");
        assert_eq!(
            ObjectKey::for_blob(&t, &h).as_str(),
            "t/acme/sha256/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tenant_rules() {
        for ok in ["a", "acme", "acme-2", "0"] {
            assert!(Tenant::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "Acme", "a/b", "a_b", "../x", &"a".repeat(64)] {
            assert_eq!(Tenant::parse(bad), Err(TenantError::Invalid), "{bad}");
        }
    }
}
