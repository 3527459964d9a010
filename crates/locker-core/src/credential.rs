//! What a Bearer credential is, from its text alone: an API key `lk_{id}.{secret}`, a browser
//! upload token `lkt_{signed claims}`, or anything else (which only the bootstrap admin key,
//! a Worker secret, can match).
//!
//! The prefixes decide, so a credential is never tried as two kinds: `lkt_...` is a token even
//! if the signature is bad, and `lk_...` is an API key or malformed, never compared with the
//! admin key. Checking the secret or the signature is the Worker's job; this is only the shape.

use std::fmt;

/// Prefix of an API key.
pub const KEY_PREFIX: &str = "lk_";
/// Prefix of a browser upload token.
pub const TOKEN_PREFIX: &str = "lkt_";

/// A credential split into its kind and parts, borrowing from the text it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `lk_{id}.{secret}`: `id` names the key's row, `secret` is checked against its stored
    /// hash. `id` is never empty and has no `.`; `secret` is never empty.
    ApiKey {
        /// The key id (before the first `.`).
        id: &'a str,
        /// The secret (everything after the first `.`).
        secret: &'a str,
    },
    /// `lkt_{token}`: signed upload-token claims, still to be verified.
    UploadToken(&'a str),
    /// Anything else, as given: only the bootstrap admin key can match it.
    Other(&'a str),
}

/// Why a credential cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// It starts with `lk_` but is not `lk_{id}.{secret}` with both parts non-empty.
    #[error("malformed API key")]
    MalformedKey,
}

impl<'a> Credential<'a> {
    /// Classifies the credential of `Authorization: Bearer {credential}`.
    pub fn parse(credential: &'a str) -> Result<Self, CredentialError> {
        // `lkt_` is checked first only for clarity: `lk_` is not a prefix of it.
        if let Some(token) = credential.strip_prefix(TOKEN_PREFIX) {
            return Ok(Self::UploadToken(token));
        }
        let Some(key) = credential.strip_prefix(KEY_PREFIX) else {
            return Ok(Self::Other(credential));
        };
        match key.split_once('.') {
            Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                Ok(Self::ApiKey { id, secret })
            }
            _ => Err(CredentialError::MalformedKey),
        }
    }
}

impl fmt::Display for Credential<'_> {
    /// The credential as it is sent; for a parsed credential, exactly the text it came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey { id, secret } => write!(f, "{KEY_PREFIX}{id}.{secret}"),
            Self::UploadToken(token) => write!(f, "{TOKEN_PREFIX}{token}"),
            Self::Other(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds() {
        assert_eq!(
            Credential::parse("lk_0123abcd.s3cr.et"),
            Ok(Credential::ApiKey {
                id: "0123abcd",
                secret: "s3cr.et"
            })
        );
        assert_eq!(
            Credential::parse("lkt_eyJ.abc"),
            Ok(Credential::UploadToken("eyJ.abc"))
        );
        assert_eq!(Credential::parse("lkt_"), Ok(Credential::UploadToken("")));
        for other in ["", "admin-secret", "lk", "lkt", "LK_a.b", "xlk_a.b"] {
            assert_eq!(Credential::parse(other), Ok(Credential::Other(other)));
        }
    }

    #[test]
    fn malformed_keys() {
        for bad in ["lk_", "lk_abc", "lk_.secret", "lk_abc.", "lk_."] {
            assert_eq!(
                Credential::parse(bad),
                Err(CredentialError::MalformedKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn renders_back() {
        for s in ["lk_a.b", "lkt_x", "other"] {
            assert_eq!(Credential::parse(s).unwrap().to_string(), s);
        }
    }
}
