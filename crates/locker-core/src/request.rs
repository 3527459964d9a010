//! Whole-request validation: every field of a request is checked before the Worker does
//! anything with it (a dedup answer, a row, an object), so a bad field never yields a 2xx and
//! never leaves a trace but its access-log row.

use crate::hash::{HashError, Sha256Hex};
use crate::refs::{LogicalPath, Namespace, RefError};
use crate::validate::{self, ContentError};

/// Default and largest lifetime of a signed upload URL, seconds.
pub const PUT_TTL_S: u64 = 60 * 60;

/// Longest lifetime of an API key given at creation, seconds (ten years): an expiry is a
/// real bound, and Unix milliseconds of any such time stay exact in D1's f64 numbers.
pub const MAX_KEY_TTL_S: u64 = 10 * 365 * 24 * 3600;

// Unix milliseconds of any time this century plus the longest key lifetime stay exact in f64.
const _: () = assert!((4_102_444_800 + MAX_KEY_TTL_S) * 1000 < 1 << 53);

/// The SHA-256 of no bytes. A 0-byte file is a normal file, and this is its only digest.
pub const EMPTY_SHA256: Sha256Hex = Sha256Hex::from_bytes([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// Why a request is refused. Messages are shown to clients as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A bad namespace or path.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A malformed digest.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A bad content type, or bytes that cannot be of the declared type.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// `size` and `sha256` cannot both be true: 0 bytes have exactly one digest.
    #[error("size and sha256 disagree: 0 bytes, and only 0 bytes, have the SHA-256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    EmptyDigest,
    /// A display name with a control character or separator, empty or too long.
    #[error("filename must be 1 to 255 bytes without control characters, '/' or '\\'")]
    Filename,
    /// `expires_in` out of range.
    #[error("expires_in must be 1 to {max} seconds")]
    ExpiresIn {
        /// The largest value allowed.
        max: u64,
    },
}

/// `POST /v1/uploads` as received (and what the gateway's PUT derives from its headers).
#[derive(Clone, Copy, Debug)]
pub struct ReserveFields<'a> {
    pub namespace: &'a str,
    pub path: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub filename: Option<&'a str>,
    pub expires_in: Option<u64>,
}

/// A reservation request whose every field is valid on its own (the caller's scopes and the
/// bucket's limits are the Worker's to check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserve {
    pub namespace: Namespace,
    pub path: LogicalPath,
    pub sha256: Sha256Hex,
    pub size: u64,
    pub content_type: String,
    /// The given display name, else the path's last segment.
    pub filename: String,
    /// Lifetime of the signed URL, seconds.
    pub ttl: u64,
}

/// Validates every field of a reservation request.
pub fn reserve(f: &ReserveFields<'_>) -> Result<Reserve, RequestError> {
    let namespace = Namespace::parse(f.namespace)?;
    let path = LogicalPath::parse(f.path)?;
    let sha256 = Sha256Hex::parse(f.sha256)?;
    validate::content_type(f.content_type)?;
    declared_bytes(f.size, &sha256, f.content_type)?;
    let filename = file_name(f.filename, &path)?;
    let ttl = expires_in(f.expires_in, PUT_TTL_S, PUT_TTL_S)?;
    Ok(Reserve {
        namespace,
        path,
        sha256,
        size: f.size,
        content_type: f.content_type.to_owned(),
        filename,
        ttl,
    })
}

/// Whether declared size, digest and type can describe one sequence of bytes. Only the empty
/// file can be checked without its bytes: it has one digest, and carries no magic number, so
/// it cannot be of a type that has one (an empty "PNG" is refused before anything is stored).
pub fn declared_bytes(
    size: u64,
    sha256: &Sha256Hex,
    content_type: &str,
) -> Result<(), RequestError> {
    if (size == 0) != (*sha256 == EMPTY_SHA256) {
        return Err(RequestError::EmptyDigest);
    }
    if size == 0 {
        // No allow-list matters here: bytes that announce no type only fail a declared type
        // that has a signature.
        validate::magic_matches(content_type, &[], &[])?;
    }
    Ok(())
}

/// A display file name: the given one, else the path's last segment. No control characters,
/// no path separators, 1 to 255 bytes.
pub fn file_name(given: Option<&str>, path: &LogicalPath) -> Result<String, RequestError> {
    match given {
        None => Ok(path.file_name().to_owned()),
        Some(name) => {
            let ok = !name.is_empty()
                && name.len() <= 255
                && !name
                    .chars()
                    .any(|c| c.is_control() || c == '/' || c == '\\');
            if ok {
                Ok(name.to_owned())
            } else {
                Err(RequestError::Filename)
            }
        }
    }
}

/// A lifetime in seconds: `given` within 1..=`max`, or `default`.
pub fn expires_in(given: Option<u64>, default: u64, max: u64) -> Result<u64, RequestError> {
    let ttl = given.unwrap_or(default);
    if (1..=max).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(RequestError::ExpiresIn { max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "hello";

    fn fields(sha: &str) -> ReserveFields<'_> {
        ReserveFields {
            namespace: "corp",
            path: "q3/deck.txt",
            sha256: sha,
            size: TEXT.len() as u64,
            content_type: "text/plain",
            filename: None,
            expires_in: None,
        }
    }

    fn text_sha() -> String {
        Sha256Hex::digest(TEXT.as_bytes()).to_string()
    }

    #[test]
    fn empty_sha256_is_the_digest_of_no_bytes() {
        assert_eq!(EMPTY_SHA256, Sha256Hex::digest(b""));
        assert_eq!(
            EMPTY_SHA256.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_valid_request_keeps_its_fields_and_gets_defaults() {
        let sha = text_sha();
        let r = reserve(&fields(&sha)).unwrap();
        assert_eq!(r.namespace.as_str(), "corp");
        assert_eq!(r.path.as_str(), "q3/deck.txt");
        assert_eq!(r.sha256.to_string(), sha);
        assert_eq!(r.size, 5);
        assert_eq!(r.filename, "deck.txt");
        assert_eq!(r.ttl, PUT_TTL_S);
        let r = reserve(&ReserveFields {
            filename: Some("Deck (final).txt"),
            expires_in: Some(1),
            ..fields(&sha)
        })
        .unwrap();
        assert_eq!(r.filename, "Deck (final).txt");
        assert_eq!(r.ttl, 1);
    }

    #[test]
    fn every_field_is_checked() {
        let sha = text_sha();
        let base = fields(&sha);
        let bad = |f: ReserveFields<'_>| reserve(&f).unwrap_err();
        assert!(matches!(
            bad(ReserveFields {
                namespace: "../x",
                ..base
            }),
            RequestError::Ref(_)
        ));
        assert!(matches!(
            bad(ReserveFields {
                namespace: "",
                ..base
            }),
            RequestError::Ref(_)
        ));
        assert!(matches!(
            bad(ReserveFields {
                path: "a/../b",
                ..base
            }),
            RequestError::Ref(_)
        ));
        assert!(matches!(
            bad(ReserveFields {
                sha256: "abc",
                ..base
            }),
            RequestError::Hash(_)
        ));
        assert_eq!(
            bad(ReserveFields {
                sha256: &sha.to_uppercase(),
                ..base
            }),
            RequestError::Hash(HashError::NotLowerHex)
        );
        assert_eq!(
            bad(ReserveFields {
                content_type: "Text/Plain",
                ..base
            }),
            RequestError::Content(ContentError::BadContentType)
        );
        assert_eq!(
            bad(ReserveFields {
                content_type: "text/plain; charset=utf-8",
                ..base
            }),
            RequestError::Content(ContentError::BadContentType)
        );
        for name in ["", "a/b", "a\\b", "a\nb", &"x".repeat(256)] {
            assert_eq!(
                bad(ReserveFields {
                    filename: Some(name),
                    ..base
                }),
                RequestError::Filename,
                "{name:?}"
            );
        }
        assert!(reserve(&ReserveFields {
            filename: Some(&"x".repeat(255)),
            ..base
        })
        .is_ok());
        for e in [0, PUT_TTL_S + 1, u64::MAX] {
            assert_eq!(
                bad(ReserveFields {
                    expires_in: Some(e),
                    ..base
                }),
                RequestError::ExpiresIn { max: PUT_TTL_S },
                "{e}"
            );
        }
        assert!(reserve(&ReserveFields {
            expires_in: Some(PUT_TTL_S),
            ..base
        })
        .is_ok());
    }

    #[test]
    fn a_bad_expires_in_is_refused_even_when_all_else_is_fine() {
        // The dedup path must never answer before this: the whole request is checked first.
        let sha = text_sha();
        assert!(reserve(&ReserveFields {
            expires_in: Some(0),
            ..fields(&sha)
        })
        .is_err());
    }

    #[test]
    fn empty_files() {
        let empty = EMPTY_SHA256.to_string();
        let ok = ReserveFields {
            sha256: &empty,
            size: 0,
            ..fields("")
        };
        assert_eq!(reserve(&ok).unwrap().size, 0);
        for ct in ["application/octet-stream", "text/csv", "text/plain"] {
            assert!(
                reserve(&ReserveFields {
                    content_type: ct,
                    ..ok
                })
                .is_ok(),
                "{ct}"
            );
        }
        // A type with a magic number cannot be 0 bytes.
        for ct in ["image/png", "application/pdf", "application/zip"] {
            assert!(
                matches!(
                    reserve(&ReserveFields {
                        content_type: ct,
                        ..ok
                    }),
                    Err(RequestError::Content(ContentError::MagicMismatch { .. }))
                ),
                "{ct}"
            );
        }
        // 0 bytes with another digest, and the empty digest with bytes.
        let sha = text_sha();
        assert_eq!(
            reserve(&ReserveFields {
                size: 0,
                ..fields(&sha)
            }),
            Err(RequestError::EmptyDigest)
        );
        assert_eq!(
            reserve(&ReserveFields { size: 1, ..ok }),
            Err(RequestError::EmptyDigest)
        );
    }

    #[test]
    fn lifetimes() {
        assert_eq!(expires_in(None, 600, 3600), Ok(600));
        assert_eq!(expires_in(Some(3600), 600, 3600), Ok(3600));
        assert_eq!(
            expires_in(Some(0), 600, 3600),
            Err(RequestError::ExpiresIn { max: 3600 })
        );
        assert_eq!(
            expires_in(Some(3601), 600, 3600),
            Err(RequestError::ExpiresIn { max: 3600 })
        );
        assert!(expires_in(Some(MAX_KEY_TTL_S), MAX_KEY_TTL_S, MAX_KEY_TTL_S).is_ok());
    }
}
