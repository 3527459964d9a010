//! HMAC-signed claims: the Worker's upload URLs, download URLs and browser upload tokens.
//!
//! A token is `base64url(json(claims)) "." base64url(hmac_sha256(key, audience "." payload))`.
//! The audience is part of what is signed but not of the token, so a download URL can never be
//! replayed as an upload URL even if the JSON of both happened to match. Verification compares
//! MACs in constant time, then checks expiry against a clock the caller passes in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::hash::Sha256Hex;
use crate::key::Tenant;
use crate::refs::Namespace;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// What a kind of signed claims is for; part of the MAC input.
pub trait Claims: Serialize + DeserializeOwned {
    /// Distinguishes kinds of tokens so one can never be used as another.
    const AUDIENCE: &'static str;
    /// Expiry, Unix seconds. A token is valid while `now < expires_at`.
    fn expires_at(&self) -> u64;
}

/// Why a signer could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("signing secret must be at least {MIN_SECRET_LEN} bytes")]
    SecretTooShort,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64url parts, or the payload is not the expected JSON.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match: tampered, or signed for another purpose or key.
    #[error("signature does not match")]
    BadSignature,
    /// Valid but past its expiry.
    #[error("token expired")]
    Expired,
}

/// Signs and verifies claims with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer for `secret`, which must be at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<Self, SignerError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SignerError::SecretTooShort);
        }
        Ok(Self {
            key: secret.to_vec(),
        })
    }

    fn mac(&self, audience: &str, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail; the fallback is never reached.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        mac.update(audience.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }

    /// Signs `claims`.
    pub fn sign<C: Claims>(&self, claims: &C) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(C::AUDIENCE, &payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks the MAC (constant time), then decodes, then checks expiry against `now` (Unix s).
    pub fn verify<C: Claims>(&self, token: &str, now: u64) -> Result<C, TokenError> {
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(C::AUDIENCE, payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: C = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now >= claims.expires_at() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The data-plane upload URL's claims: one reservation, its exact bytes, until `exp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutClaims {
    /// Upload (reservation) id.
    pub uid: String,
    /// Expected digest of the body.
    pub sha256: Sha256Hex,
    /// Expected body length.
    pub size: u64,
    /// Expected `Content-Type`.
    pub ct: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl Claims for PutClaims {
    const AUDIENCE: &'static str = "locker-put";
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

/// The data-plane URL of one part of a multipart upload (`PUT /v1/data/{id}/parts/{n}`): that
/// part of that reservation, exactly these bytes, until `exp`. Its own audience, so a whole-file
/// URL is never a part URL nor the other way round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartClaims {
    /// Upload (reservation) id.
    pub uid: String,
    /// Part number, from 1.
    pub n: u32,
    /// Expected digest of the part's bytes.
    pub sha256: Sha256Hex,
    /// Expected length of the part.
    pub size: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl Claims for PartClaims {
    const AUDIENCE: &'static str = "locker-part";
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

/// The data-plane download URL's claims: one tenant's blob, served as a given type and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetClaims {
    /// Tenant whose blob this is.
    pub t: Tenant,
    /// Digest of the blob (with the tenant, it names the object key).
    pub sha256: Sha256Hex,
    /// `Content-Type` to serve.
    pub ct: String,
    /// File name for `Content-Disposition`.
    pub name: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl Claims for GetClaims {
    const AUDIENCE: &'static str = "locker-get";
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

/// A short-lived upload token a site's backend mints for a browser (`POST /v1/tokens`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTokenClaims {
    /// Tenant the uploads belong to.
    pub t: Tenant,
    /// Id of the API key that minted the token (for the access log and revocation).
    pub kid: String,
    /// The only namespace the token may write.
    pub ns: Namespace,
    /// Paths must start with this (may be empty).
    pub prefix: String,
    /// Largest file, in bytes.
    pub max: u64,
    /// Allowed content types (`image/png`, `image/*`); empty means the tenant's defaults.
    pub types: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl Claims for UploadTokenClaims {
    const AUDIENCE: &'static str = "locker-upload-token";
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"locker-test-secret-0123456789abcdef";
    // 2013-05-24T00:00:00Z, the AWS example date, as a fixed clock.
    const NOW: u64 = 1_369_353_600;

    fn put() -> PutClaims {
        PutClaims {
            uid: "u1".into(),
            sha256: Sha256Hex::digest(b"abc"),
            size: 3,
            ct: "text/plain".into(),
            exp: NOW + 900,
        }
    }

    /// Whole-string vector. The expected MAC was computed outside this crate with Python:
    /// `hmac.new(SECRET, b"locker-put." + payload, "sha256")`, base64url without padding.
    #[test]
    fn put_url_vector() {
        let signer = Signer::new(SECRET).unwrap();
        assert_eq!(signer.sign(&put()), PUT_VECTOR);
        assert_eq!(signer.verify::<PutClaims>(PUT_VECTOR, NOW).unwrap(), put());
    }

    const PUT_VECTOR: &str = "eyJ1aWQiOiJ1MSIsInNoYTI1NiI6ImJhNzgxNmJmOGYwMWNmZWE0MTQxNDBkZTVkYWUyMjIzYjAwMzYxYTM5NjE3N2E5Y2I0MTBmZjYxZjIwMDE1YWQiLCJzaXplIjozLCJjdCI6InRleHQvcGxhaW4iLCJleHAiOjEzNjkzNTQ1MDB9.cumD3GDA2hAZPoOCOq0NZh5NW7mnTofoE6auuGFUdYA";

    #[test]
    fn refuses_expired_tampered_and_foreign_tokens() {
        let signer = Signer::new(SECRET).unwrap();
        let token = signer.sign(&put());
        assert_eq!(
            signer.verify::<PutClaims>(&token, NOW + 900),
            Err(TokenError::Expired)
        );
        // Another size, re-encoded with the old MAC.
        let (_, tag) = token.split_once('.').unwrap();
        let mut bigger = put();
        bigger.size = 4;
        let forged = format!(
            "{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&bigger).unwrap())
        );
        assert_eq!(
            signer.verify::<PutClaims>(&forged, NOW),
            Err(TokenError::BadSignature)
        );
        // Another key.
        let other = Signer::new(&[7u8; 32]).unwrap();
        assert_eq!(
            other.verify::<PutClaims>(&token, NOW),
            Err(TokenError::BadSignature)
        );
        // A put token is not a get token, even if the payload decoded.
        assert_eq!(
            signer.verify::<GetClaims>(&token, NOW),
            Err(TokenError::BadSignature)
        );
        for junk in ["", ".", "abc", "a.b.c", "!!.??"] {
            assert!(signer.verify::<PutClaims>(junk, NOW).is_err(), "{junk}");
        }
    }

    /// Whole-string vector, computed like [`PUT_VECTOR`] with the audience `locker-part`.
    #[test]
    fn part_url_vector() {
        let part = PartClaims {
            uid: "u1".into(),
            n: 2,
            sha256: Sha256Hex::digest(b"abc"),
            size: 3,
            exp: NOW + 900,
        };
        let signer = Signer::new(SECRET).unwrap();
        assert_eq!(signer.sign(&part), PART_VECTOR);
        assert_eq!(signer.verify::<PartClaims>(PART_VECTOR, NOW).unwrap(), part);
        // A part URL is not a whole-file URL, and the other way round.
        assert_eq!(
            signer.verify::<PutClaims>(PART_VECTOR, NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            signer.verify::<PartClaims>(PUT_VECTOR, NOW),
            Err(TokenError::BadSignature)
        );
    }

    const PART_VECTOR: &str = "eyJ1aWQiOiJ1MSIsIm4iOjIsInNoYTI1NiI6ImJhNzgxNmJmOGYwMWNmZWE0MTQxNDBkZTVkYWUyMjIzYjAwMzYxYTM5NjE3N2E5Y2I0MTBmZjYxZjIwMDE1YWQiLCJzaXplIjozLCJleHAiOjEzNjkzNTQ1MDB9.8ZdGLouB05Jh1lvFcUqmEMrotEhi2HqR56g_9_SEMlE";

    #[test]
    fn short_secret_is_refused() {
        assert_eq!(
            Signer::new(&[0u8; 31]).unwrap_err(),
            SignerError::SecretTooShort
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
