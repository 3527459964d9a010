//! Property tests of every parser in locker-core, against the promises their doc comments and
//! README.md make ("namespaces are a-z 0-9 - _", "no `..`, `\`, control characters or `%XX` in
//! a path", "parse never panics", "a ref renders back to what was parsed").
//!
//! Each property states the promise independently of the code under test where it can: a
//! percent-decoder stands in for "has a `%XX` escape", u128 arithmetic for Range clamping, the
//! `url` crate for "the presigned URL names this key". Case counts stay in the hundreds so the
//! whole crate's tests run in seconds.

// The whole file is tests; helpers outside `#[test]` functions build fixtures from strategies
// that only generate valid input, so an unwrap failing there is a broken strategy.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use locker_core::bucket::BucketId;
use locker_core::credential::{Credential, CredentialError, KEY_PREFIX, TOKEN_PREFIX};
use locker_core::range::{ByteRange, RangeError};
use locker_core::refs::{
    LockerRef, LogicalPath, Namespace, RefError, MAX_NAMESPACE_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN,
    SCHEME,
};
use locker_core::s3::{credential_secrets, r2_endpoint, S3Bucket, S3Error};
use locker_core::sign::{GetClaims, PutClaims, Signer, TokenError, UploadTokenClaims};
use locker_core::validate::{
    content_disposition, content_type, magic_matches, sniff, type_allowed, ContentError, SNIFF_LEN,
};
use locker_core::{HashError, ObjectKey, Sha256Hex, Tenant, TenantError};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

/// Failures are not persisted to files: each bug a property found has its own regression unit
/// test next to the code it fixed.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// Any string, biased towards the characters these parsers care about: structure (`/`, `.`,
/// `:`, `-`, `=`, `,`), escapes (`%`, hex digits, `\`), controls, case and non-ASCII.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9./:%\\\\_ \t=,+*;-]{0,40}",
        "[a-f0-9%./\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{a0}é名]{0,40}",
        "(locker://)?[a-z0-9_-]{0,8}(/[a-z.%2e\\\\]{0,6}){0,4}",
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,62}"
}

fn tenant() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,62}"
}

/// One valid path segment: no `/`, `\`, control character or `%XX` (a `%` is only ever followed
/// by a non-hex character), not `.` or `..`, at most [`MAX_SEGMENT_LEN`] bytes.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "([^/\\\\\\p{Cc}%]|%[g-zG-Z ._]){1,24}",
        "[a-z.]{1,255}",
        "\\.{3,6}",
    ]
    .prop_filter("dot segments and over-long segments are invalid", |s| {
        s != "." && s != ".." && s.len() <= MAX_SEGMENT_LEN
    })
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..8)
        .prop_map(|segments| segments.join("/"))
        .prop_filter("paths are at most MAX_PATH_LEN bytes", |p| {
            p.len() <= MAX_PATH_LEN
        })
}

/// A lowercase MIME type as `content_type` accepts it.
fn mime() -> impl Strategy<Value = String> {
    "[a-z0-9!#$&^_.+-]{1,20}/[a-z0-9!#$&^_.+-]{1,40}"
}

/// Whether `s` holds a `%XX` escape, decided by a percent-decoder rather than by the code
/// under test: decoding changes the bytes exactly when there is one.
fn has_escape(s: &str) -> bool {
    percent_decode_str(s).collect::<Vec<u8>>() != s.as_bytes()
}

fn path_promises_hold(p: &str) -> Result<(), TestCaseError> {
    prop_assert!(!p.is_empty() && p.len() <= MAX_PATH_LEN);
    prop_assert!(!p.contains('\\'));
    prop_assert!(!p.chars().any(char::is_control));
    prop_assert!(!has_escape(p));
    for seg in p.split('/') {
        prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
        prop_assert!(seg.len() <= MAX_SEGMENT_LEN);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Namespaces, paths, refs

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_namespaces_parse_to_themselves(ns in namespace()) {
        let parsed = Namespace::parse(&ns);
        prop_assert_eq!(parsed.as_ref().map(Namespace::as_str), Ok(ns.as_str()));
        prop_assert_eq!(parsed.as_ref().map(ToString::to_string), Ok(ns.clone()));
        let json = serde_json::to_string(&parsed.clone().unwrap()).unwrap();
        prop_assert_eq!(serde_json::from_str::<Namespace>(&json).ok(), parsed.ok());
    }

    #[test]
    fn namespace_parse_keeps_its_promise(s in tricky_string()) {
        match Namespace::parse(&s) {
            Ok(ns) => {
                prop_assert_eq!(ns.as_str(), s.as_str());
                prop_assert!((1..=MAX_NAMESPACE_LEN).contains(&s.len()));
                let first = s.as_bytes()[0];
                prop_assert!(first.is_ascii_lowercase() || first.is_ascii_digit());
                prop_assert!(s.bytes().all(|c| c.is_ascii_lowercase()
                    || c.is_ascii_digit() || c == b'-' || c == b'_'));
            }
            Err(RefError::NamespaceLength) => {
                prop_assert!(s.is_empty() || s.len() > MAX_NAMESPACE_LEN);
            }
            Err(RefError::NamespaceChars) => {
                prop_assert!((1..=MAX_NAMESPACE_LEN).contains(&s.len()));
            }
            Err(other) => prop_assert!(false, "not a namespace error: {other:?}"),
        }
    }

    #[test]
    fn valid_paths_parse_to_themselves(p in path()) {
        let parsed = LogicalPath::parse(&p);
        prop_assert_eq!(parsed.as_ref().map(LogicalPath::as_str), Ok(p.as_str()));
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.to_string(), p.clone());
        prop_assert_eq!(Some(parsed.file_name()), p.rsplit('/').next());
        prop_assert!(!parsed.file_name().contains('/'));
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<LogicalPath>(&json).ok(), Some(parsed));
    }

    /// Whatever is accepted has no `..` segment, `\`, control character or `%XX` escape, so no
    /// later layer (a URL decoder, a filesystem) can turn it into a traversal.
    #[test]
    fn accepted_paths_are_safe(s in tricky_string()) {
        if let Ok(p) = LogicalPath::parse(&s) {
            prop_assert_eq!(p.as_str(), s.as_str());
            path_promises_hold(&s)?;
        }
    }

    /// The same, for inputs built to be near misses: a valid path with one forbidden thing
    /// inserted at any character boundary is refused, for the right reason.
    #[test]
    fn one_forbidden_thing_is_refused(
        p in path(),
        at in any::<prop::sample::Index>(),
        (bad, want) in prop_oneof![
            Just(("\\", RefError::Backslash)),
            Just(("%2e", RefError::PercentEscape)),
            Just(("%2F", RefError::PercentEscape)),
            Just(("%00", RefError::PercentEscape)),
            Just(("\u{0}", RefError::ControlChar)),
            Just(("\n", RefError::ControlChar)),
            Just(("\u{7f}", RefError::ControlChar)),
            Just(("\u{85}", RefError::ControlChar)),
        ],
    ) {
        let bounds: Vec<usize> = p.char_indices().map(|(i, _)| i).chain([p.len()]).collect();
        let i = bounds[at.index(bounds.len())];
        let s = format!("{}{bad}{}", &p[..i], &p[i..]);
        prop_assume!(s.len() <= MAX_PATH_LEN);
        // `%` followed by our hex could also be completed by the text before it; either way
        // it is an escape. Controls and backslashes are checked before escapes.
        prop_assert_eq!(LogicalPath::parse(&s), Err(want));
    }

    #[test]
    fn dot_segments_are_refused_anywhere(
        before in prop::collection::vec(segment(), 0..3),
        after in prop::collection::vec(segment(), 0..3),
        dots in prop_oneof![Just("."), Just("..")],
    ) {
        let s = before.iter().map(String::as_str).chain([dots])
            .chain(after.iter().map(String::as_str))
            .collect::<Vec<_>>().join("/");
        prop_assume!(s.len() <= MAX_PATH_LEN);
        prop_assert_eq!(LogicalPath::parse(&s), Err(RefError::DotSegment));
    }

    #[test]
    fn refs_from_valid_parts_parse_back_equal(ns in namespace(), p in path()) {
        let r = LockerRef::new(Namespace::parse(&ns).unwrap(), LogicalPath::parse(&p).unwrap());
        let text = r.to_string();
        prop_assert_eq!(&text, &format!("{SCHEME}{ns}/{p}"));
        prop_assert_eq!(LockerRef::from_str(&text), Ok(r.clone()));
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<LockerRef>(&json).ok(), Some(r));
    }

    /// A ref has one spelling: whatever parses renders back to exactly the input, and every
    /// refusal is one of the documented errors, by the documented rule.
    #[test]
    fn ref_parse_is_canonical_and_typed(s in tricky_string()) {
        match LockerRef::from_str(&s) {
            Ok(r) => {
                prop_assert_eq!(r.to_string(), s.clone());
                path_promises_hold(r.path.as_str())?;
            }
            Err(RefError::Scheme) => prop_assert!(!s.starts_with(SCHEME)),
            Err(RefError::MissingPath) => {
                prop_assert!(s.starts_with(SCHEME) && !s[SCHEME.len()..].contains('/'));
            }
            Err(_) => prop_assert!(s.starts_with(SCHEME) && s[SCHEME.len()..].contains('/')),
        }
    }

    #[test]
    fn refs_with_prefixes_parse_like_their_parts(s in tricky_string()) {
        let text = format!("{SCHEME}{s}");
        let by_parts = s.split_once('/').ok_or(RefError::MissingPath).and_then(|(ns, p)| {
            Ok(LockerRef::new(Namespace::parse(ns)?, LogicalPath::parse(p)?))
        });
        prop_assert_eq!(LockerRef::from_str(&text), by_parts);
    }
}

// ---------------------------------------------------------------------------------------------
// The safe file-name function

fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), path().prop_map(|p| format!("{p}/"))]
}

proptest! {
    #![proptest_config(config())]

    /// Any file name a user picks becomes one safe last segment under the prefix, as long as
    /// the prefix leaves room for a full segment.
    #[test]
    fn any_file_name_becomes_one_safe_segment(pre in prefix(), name in tricky_string()) {
        prop_assume!(pre.len() + MAX_SEGMENT_LEN <= MAX_PATH_LEN);
        let path = LogicalPath::for_file_name(&pre, &name);
        prop_assert!(path.is_ok(), "{:?} + {:?}: {:?}", pre, name, path);
        let path = path.unwrap();
        path_promises_hold(path.as_str())?;
        let last = path.as_str().strip_prefix(pre.as_str());
        prop_assert_eq!(last, Some(path.file_name()));
        let last = path.file_name();
        prop_assert!(!last.contains(['/', '\\', '%']));
        prop_assert!(!last.is_empty() && last.len() <= MAX_SEGMENT_LEN);
    }

    /// A name that is already a safe segment (and has nothing to trim) is kept as it is.
    #[test]
    fn safe_file_names_are_kept(pre in prefix(), name in segment()) {
        prop_assume!(!name.contains('%') && name.trim() == name);
        prop_assume!(pre.len() + name.len() <= MAX_PATH_LEN);
        let path = LogicalPath::for_file_name(&pre, &name).unwrap();
        prop_assert_eq!(path.as_str(), format!("{pre}{name}"));
    }

    /// An over-long name keeps its end, where the extension is.
    #[test]
    fn long_file_names_keep_their_end(stem in "[a-zé名]{200,400}", ext in "\\.[a-z0-9]{1,8}") {
        let name = format!("{stem}{ext}");
        let path = LogicalPath::for_file_name("", &name).unwrap();
        prop_assert!(path.as_str().len() <= MAX_SEGMENT_LEN);
        prop_assert!(name.ends_with(path.as_str()));
        prop_assert!(path.as_str().ends_with(&ext));
    }
}

// ---------------------------------------------------------------------------------------------
// Tenants, digests, object keys, bucket ids

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_tenants_round_trip(t in tenant()) {
        let parsed = Tenant::parse(&t).unwrap();
        prop_assert_eq!(parsed.as_str(), t.as_str());
        prop_assert_eq!(String::from(parsed.clone()), t.clone());
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Tenant>(&json).ok(), Some(parsed));
    }

    #[test]
    fn tenant_parse_keeps_its_promise(s in tricky_string()) {
        let ok = (1..=63).contains(&s.len())
            && !s.starts_with('-')
            && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        match Tenant::parse(&s) {
            Ok(t) => {
                prop_assert!(ok);
                prop_assert_eq!(t.as_str(), s.as_str());
            }
            Err(TenantError::Invalid) => prop_assert!(!ok),
        }
        // Deserializing applies the same rule.
        let json = serde_json::to_string(&s).unwrap();
        prop_assert_eq!(serde_json::from_str::<Tenant>(&json).is_ok(), ok);
    }

    #[test]
    fn digests_render_and_parse_back(bytes in any::<[u8; 32]>()) {
        let h = Sha256Hex::from_bytes(bytes);
        let text = h.to_string();
        prop_assert_eq!(text.len(), 64);
        prop_assert!(text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        prop_assert_eq!(Sha256Hex::parse(&text), Ok(h));
        prop_assert_eq!(h.as_bytes(), &bytes);
        let json = serde_json::to_string(&h).unwrap();
        prop_assert_eq!(serde_json::from_str::<Sha256Hex>(&json).ok(), Some(h));
        // One digest, one spelling: any upper-case letter is refused.
        if text.bytes().any(|c| c.is_ascii_alphabetic()) {
            prop_assert_eq!(Sha256Hex::parse(&text.to_uppercase()), Err(HashError::NotLowerHex));
        }
    }

    #[test]
    fn digest_parse_keeps_its_promise(s in prop_oneof![tricky_string(), "[0-9a-fA-Fg]{62,66}"]) {
        let lower_hex = |c: u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
        match Sha256Hex::parse(&s) {
            Ok(h) => prop_assert_eq!(h.to_string(), s.clone()),
            Err(HashError::Length(n)) => {
                prop_assert_ne!(s.len(), 64);
                prop_assert_eq!(n, s.chars().count());
            }
            Err(HashError::NotLowerHex) => {
                prop_assert_eq!(s.len(), 64);
                prop_assert!(!s.bytes().all(lower_hex));
            }
        }
    }

    /// A key names one tenant's one blob: it splits back into exactly the tenant and digest it
    /// was built from, so no tenant's key can fall under another's prefix.
    #[test]
    fn object_keys_split_back_into_their_parts(t in tenant(), bytes in any::<[u8; 32]>()) {
        let tenant = Tenant::parse(&t).unwrap();
        let hash = Sha256Hex::from_bytes(bytes);
        let key = ObjectKey::for_blob(&tenant, &hash);
        let parts: Vec<&str> = key.as_str().split('/').collect();
        prop_assert_eq!(parts.len(), 4);
        prop_assert_eq!(parts[0], "t");
        prop_assert_eq!(Tenant::parse(parts[1]), Ok(tenant));
        prop_assert_eq!(parts[2], "sha256");
        prop_assert_eq!(Sha256Hex::parse(parts[3]), Ok(hash));
        prop_assert_eq!(key.to_string(), key.as_str());
    }

    #[test]
    fn bucket_ids_parse_like_digests(s in prop_oneof![tricky_string(), "[0-9a-fA-F]{64}"]) {
        let parsed = BucketId::parse(&s);
        prop_assert_eq!(parsed.is_some(), Sha256Hex::parse(&s).is_ok());
        if let Some(id) = parsed {
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }

    #[test]
    fn derived_bucket_ids_are_valid_and_ignore_trailing_slashes(
        endpoint in "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        slashes in "/{0,3}",
        name in "[a-z0-9.-]{3,20}",
    ) {
        let id = BucketId::derive_s3(&format!("{endpoint}{slashes}"), &name);
        prop_assert_eq!(id.clone(), BucketId::derive_s3(&endpoint, &name));
        prop_assert_eq!(BucketId::parse(id.as_str()), Some(id));
    }
}

// ---------------------------------------------------------------------------------------------
// Content types, allow-lists, Content-Disposition

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_content_types_are_accepted_unchanged(t in mime()) {
        prop_assert_eq!(content_type(&t), Ok(t.as_str()));
    }

    /// Accepted types have one spelling: exactly one `/`, lowercase, no parameters, no
    /// whitespace, at most 127 bytes.
    #[test]
    fn accepted_content_types_have_one_spelling(s in prop_oneof![
        tricky_string(),
        "[a-zA-Z0-9/; =*.+-]{0,30}",
        mime().prop_map(|m| format!("{m}; charset=utf-8")),
    ]) {
        match content_type(&s) {
            Ok(t) => {
                prop_assert_eq!(t, s.as_str());
                prop_assert_eq!(s.matches('/').count(), 1);
                prop_assert!(!s.starts_with('/') && !s.ends_with('/'));
                prop_assert!(s.len() <= 127);
                prop_assert!(!s.bytes().any(|c| c.is_ascii_uppercase()
                    || c.is_ascii_whitespace() || c.is_ascii_control() || c == b';'
                    || !c.is_ascii()));
            }
            Err(e) => prop_assert_eq!(e, ContentError::BadContentType),
        }
    }

    #[test]
    fn type_allowed_matches_exact_wildcard_and_any(
        t in mime(),
        other in mime(),
        extra in prop::collection::vec(mime(), 0..4),
    ) {
        let (ty, _) = t.split_once('/').unwrap();
        let with = |p: &str| {
            let mut list = extra.clone();
            list.push(p.to_owned());
            list
        };
        prop_assert!(type_allowed(&t, &with(&t)));
        prop_assert!(type_allowed(&t, &with("*/*")));
        let wildcard = format!("{ty}/*");
        prop_assert!(type_allowed(&t, &with(&wildcard)));
        prop_assert!(!type_allowed(&t, &[]));
        // Without a match, exact entries of other types never allow it...
        let exact_only: Vec<String> = extra.iter().filter(|e| **e != t).cloned().collect();
        prop_assert!(!type_allowed(&t, &exact_only));
        // ...and a wildcard allows exactly its own top-level type.
        let (other_ty, _) = other.split_once('/').unwrap();
        prop_assert_eq!(
            type_allowed(&t, &[format!("{other_ty}/*")]),
            ty == other_ty
        );
        // Order does not matter.
        let mut reversed = with(&t);
        reversed.reverse();
        prop_assert!(type_allowed(&t, &reversed));
    }

    /// The header value can never break out of its line or its quotes, and `filename*`
    /// percent-decodes back to exactly the name.
    #[test]
    fn content_disposition_is_safe_and_round_trips(attachment in any::<bool>(), name in tricky_string()) {
        let header = content_disposition(attachment, &name);
        prop_assert!(header.bytes().all(|c| (0x20..0x7f).contains(&c)), "{header:?}");
        let kind = if attachment { "attachment" } else { "inline" };
        let rest = header.strip_prefix(&format!("{kind}; filename=\"")).unwrap();
        let (ascii, encoded) = rest.split_once("\"; filename*=UTF-8''").unwrap();
        prop_assert!(!ascii.contains(['"', '\\']));
        prop_assert_eq!(ascii.chars().count(), name.chars().count());
        let decoded = percent_decode_str(encoded).decode_utf8().map(std::borrow::Cow::into_owned);
        prop_assert_eq!(decoded.ok(), Some(name.clone()));
    }
}

/// The types whose bytes carry a signature locker knows (validate.rs `SIGNATURES`).
const SIGNED_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/wasm",
];

fn head() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(b"\x89PNG\r\n\x1a\n".to_vec()),
        Just(b"\xff\xd8\xff".to_vec()),
        Just(b"GIF89a".to_vec()),
        Just(b"RIFF\0\0\0\0WEBP".to_vec()),
        Just(b"%PDF-".to_vec()),
        Just(b"PK\x03\x04".to_vec()),
        Just(b"\x1f\x8b".to_vec()),
        Just(b"\0asm".to_vec()),
        Just(Vec::new()),
    ];
    (magic, prop::collection::vec(any::<u8>(), 0..SNIFF_LEN)).prop_map(|(mut m, tail)| {
        m.extend(tail);
        m
    })
}

proptest! {
    #![proptest_config(config())]

    /// A type with a known signature is accepted exactly when the bytes carry it; bytes that
    /// announce a type are accepted as that type, and as any type when everything is allowed
    /// and the declared type has no signature of its own.
    #[test]
    fn magic_numbers_decide_signed_types(
        bytes in head(),
        declared in prop_oneof![prop::sample::select(SIGNED_TYPES).prop_map(str::to_owned), mime()],
    ) {
        let any = vec!["*/*".to_owned()];
        let actual = sniff(&bytes);
        let got = magic_matches(&declared, &bytes, &any);
        if actual == Some(declared.as_str()) {
            prop_assert_eq!(got, Ok(()));
        } else if SIGNED_TYPES.contains(&declared.as_str()) {
            let is_mismatch = matches!(got, Err(ContentError::MagicMismatch { .. }));
            prop_assert!(is_mismatch, "{declared} {bytes:?}: {got:?}");
        } else {
            prop_assert_eq!(got, Ok(()));
            // With an allow-list of only the declared type, other known bytes are refused.
            let only = vec![declared.clone()];
            prop_assert_eq!(magic_matches(&declared, &bytes, &only).is_ok(), actual.is_none());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Range headers

/// What RFC 9110 §14.1.2 says a single byte range selects, computed in u128 so nothing can
/// overflow: `None` when it selects no byte.
fn rfc_range(first: Option<u128>, last: Option<u128>, size: u128) -> Option<(u128, u128)> {
    let (first, last) = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        (Some(f), None) => (f, u128::MAX),
        (None, Some(n)) if n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return None,
    };
    (first < size && first <= last).then(|| (first, last.min(size - 1)))
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

/// Positions that hit the edges: 0, near the size, near and past `u64::MAX`.
fn position(size: u64) -> impl Strategy<Value = u128> {
    let s = u128::from(size);
    prop_oneof![
        0..=s.saturating_add(2),
        Just(s.saturating_sub(1)),
        any::<u64>().prop_map(u128::from),
        Just(u128::from(u64::MAX)),
        Just(u128::from(u64::MAX) + 1),
        any::<u128>(),
    ]
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..=3u64, 0..=2000u64, any::<u64>(), Just(u64::MAX)]
}

proptest! {
    #![proptest_config(config())]

    /// Every well-formed single range is answered exactly as RFC 9110 says, whitespace and
    /// numbers past u64 included.
    #[test]
    fn single_ranges_match_the_rfc(
        (size, first, last) in size().prop_flat_map(|size| {
            (Just(size), prop::option::of(position(size)), prop::option::of(position(size)))
        }),
        unit in prop_oneof![Just("bytes"), Just("Bytes"), Just("BYTES")],
        (w1, w2, w3, w4) in (ows(), ows(), ows(), ows()),
    ) {
        prop_assume!(first.is_some() || last.is_some());
        let show = |n: Option<u128>| n.map(|n| n.to_string()).unwrap_or_default();
        let header = format!("{unit}={w1}{}{w2}-{w3}{}{w4}", show(first), show(last));
        let got = ByteRange::parse(Some(&header), size);
        match rfc_range(first, last, u128::from(size)) {
            Some((f, l)) => {
                let r = got.as_ref().ok().copied().flatten();
                prop_assert!(r.is_some(), "{header:?} size {size}: {got:?}");
                let r = r.unwrap();
                prop_assert_eq!((u128::from(r.first()), u128::from(r.last())), (f, l));
                prop_assert_eq!(u128::from(r.length()), l - f + 1);
                prop_assert_eq!(r.content_range(size), format!("bytes {f}-{l}/{size}"));
                // Rendering gives a header that selects the same bytes.
                prop_assert_eq!(ByteRange::parse(Some(&r.to_string()), size), Ok(Some(r)));
            }
            None => prop_assert!(got.is_err(), "{header:?} size {size}: {got:?}"),
        }
    }

    /// Never panics; whatever is answered lies inside the file; a 0-byte file never gets a
    /// range; a header that is not a single `bytes=` range means the whole file.
    #[test]
    fn range_parse_keeps_its_promise(
        header in prop_oneof![
            tricky_string(),
            "[bB]ytes=[0-9 ,+-]{0,12}",
            "bytes=[0-9]{0,25}-[0-9]{0,25}",
        ],
        size in size(),
    ) {
        let got = ByteRange::parse(Some(&header), size);
        let is_bytes = header
            .split_once('=')
            .is_some_and(|(unit, spec)| unit.eq_ignore_ascii_case("bytes") && !spec.contains(','));
        match got {
            Ok(Some(r)) => {
                prop_assert!(is_bytes);
                prop_assert!(r.first() <= r.last() && r.last() < size);
                prop_assert!(r.length() >= 1);
            }
            Ok(None) => prop_assert!(!is_bytes, "{header:?}"),
            Err(RangeError::Malformed { size: s } | RangeError::Unsatisfiable { size: s }) => {
                prop_assert!(is_bytes);
                prop_assert_eq!(s, size);
            }
        }
        if size == 0 {
            prop_assert!(!matches!(got, Ok(Some(_))));
        }
    }

    /// Positions are decimal digits only: a sign or any other character makes it malformed.
    #[test]
    fn only_digits_are_positions(
        a in 0..100u64,
        b in 100..200u64,
        junk in prop_oneof![Just("+"), Just("-"), Just("0x"), Just("a"), Just("\u{a0}"), Just("１")],
        at in 0..3usize,
    ) {
        let header = match at {
            0 => format!("bytes={junk}{a}-{b}"),
            1 => format!("bytes={a}-{junk}{b}"),
            _ => format!("bytes=-{junk}{b}"),
        };
        prop_assert_eq!(
            ByteRange::parse(Some(&header), 1000),
            Err(RangeError::Malformed { size: 1000 })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signed tokens

const NOW: u64 = 1_369_353_600;

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 32..80)
}

fn put_claims() -> impl Strategy<Value = PutClaims> {
    (
        any::<String>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<String>(),
        any::<u64>(),
    )
        .prop_map(|(uid, sha, size, ct, exp)| PutClaims {
            uid,
            sha256: Sha256Hex::from_bytes(sha),
            size,
            ct,
            exp,
        })
}

fn upload_token_claims() -> impl Strategy<Value = UploadTokenClaims> {
    (
        tenant(),
        any::<String>(),
        namespace(),
        any::<String>(),
        any::<u64>(),
        prop::collection::vec(mime(), 0..3),
        any::<u64>(),
    )
        .prop_map(|(t, kid, ns, prefix, max, types, exp)| UploadTokenClaims {
            t: Tenant::parse(&t).unwrap(),
            kid,
            ns: Namespace::parse(&ns).unwrap(),
            prefix,
            max,
            types,
            exp,
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let c = prop_oneof![
        prop::char::range('A', 'Z'),
        prop::char::range('a', 'z'),
        prop::char::range('0', '9'),
        Just('-'),
        Just('_'),
        Just('.'),
        Just('='),
        any::<char>(),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        c.prop_map(Mutation::Append),
    ]
}

/// `token` (ASCII) with one mutation applied.
fn mutate(token: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    match m {
        Mutation::Replace(i, c) => {
            let i = i.index(chars.len());
            chars[i] = *c;
        }
        Mutation::Insert(i, c) => {
            let i = i.index(chars.len() + 1);
            chars.insert(i, *c);
        }
        Mutation::Delete(i) => {
            let i = i.index(chars.len());
            chars.remove(i);
        }
        Mutation::Truncate(i) => chars.truncate(i.index(chars.len())),
        Mutation::Append(c) => chars.push(*c),
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tokens_verify_until_they_expire(
        key in secret(),
        claims in put_claims(),
        now in any::<u64>(),
    ) {
        let signer = Signer::new(&key).unwrap();
        let token = signer.sign(&claims);
        let (payload, tag) = token.split_once('.').unwrap();
        prop_assert!(URL_SAFE_NO_PAD.decode(payload).is_ok() && URL_SAFE_NO_PAD.decode(tag).is_ok());
        let want = if now < claims.exp { Ok(claims.clone()) } else { Err(TokenError::Expired) };
        prop_assert_eq!(signer.verify::<PutClaims>(&token, now), want);
        // The boundary itself: valid one second before `exp`, expired at `exp`.
        if claims.exp > 0 {
            prop_assert_eq!(signer.verify::<PutClaims>(&token, claims.exp - 1), Ok(claims.clone()));
        }
        prop_assert_eq!(signer.verify::<PutClaims>(&token, claims.exp), Err(TokenError::Expired));
    }

    #[test]
    fn upload_tokens_round_trip(key in secret(), claims in upload_token_claims()) {
        let signer = Signer::new(&key).unwrap();
        let token = signer.sign(&claims);
        let now = claims.exp.saturating_sub(1);
        let got = signer.verify::<UploadTokenClaims>(&token, now);
        if claims.exp > 0 {
            prop_assert_eq!(got, Ok(claims));
        } else {
            prop_assert_eq!(got, Err(TokenError::Expired));
        }
    }

    /// Any change to a token, anywhere, is refused: flipped, inserted, deleted, cut or
    /// appended characters, in the payload, the `.` or the MAC.
    #[test]
    fn any_mutation_of_a_token_is_refused(
        key in secret(),
        claims in put_claims(),
        m in mutation(),
    ) {
        let claims = PutClaims { exp: NOW + 900, ..claims };
        let signer = Signer::new(&key).unwrap();
        let token = signer.sign(&claims);
        let forged = mutate(&token, &m);
        prop_assume!(forged != token);
        let got = signer.verify::<PutClaims>(&forged, NOW);
        prop_assert!(
            matches!(got, Err(TokenError::Malformed | TokenError::BadSignature)),
            "{m:?} -> {got:?}"
        );
    }

    /// A token is bound to its key and its audience.
    #[test]
    fn tokens_are_bound_to_key_and_audience(
        key in secret(),
        other in secret(),
        claims in put_claims(),
    ) {
        prop_assume!(key != other);
        let claims = PutClaims { exp: NOW + 900, ..claims };
        let token = Signer::new(&key).unwrap().sign(&claims);
        let other = Signer::new(&other).unwrap();
        prop_assert_eq!(other.verify::<PutClaims>(&token, NOW), Err(TokenError::BadSignature));
        let signer = Signer::new(&key).unwrap();
        prop_assert_eq!(signer.verify::<GetClaims>(&token, NOW), Err(TokenError::BadSignature));
        prop_assert_eq!(
            signer.verify::<UploadTokenClaims>(&token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn verify_never_panics(key in secret(), token in tricky_string(), now in any::<u64>()) {
        let signer = Signer::new(&key).unwrap();
        prop_assert!(signer.verify::<PutClaims>(&token, now).is_err());
        prop_assert!(signer.verify::<GetClaims>(&token, now).is_err());
    }

    #[test]
    fn short_secrets_are_refused(key in prop::collection::vec(any::<u8>(), 0..32)) {
        prop_assert!(Signer::new(&key).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// S3 helpers

fn bucket() -> S3Bucket {
    S3Bucket::new("http://127.0.0.1:8014", "e2e", "us-east-1", true, "K", "S").unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn r2_endpoints_accept_exactly_the_documented_inputs(
        account in prop_oneof![tricky_string(), "[a-z0-9]{1,64}", "[a-z0-9]{63,66}"],
        jurisdiction in prop_oneof![
            Just(""), Just("default"), Just("eu"), Just("fedramp"), Just("EU"), Just("us"),
        ],
    ) {
        let account_ok = (1..=64).contains(&account.len())
            && account.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        match r2_endpoint(&account, jurisdiction) {
            Ok(endpoint) => {
                prop_assert!(account_ok);
                let host = match jurisdiction {
                    "" | "default" => format!("{account}.r2.cloudflarestorage.com"),
                    j => format!("{account}.{j}.r2.cloudflarestorage.com"),
                };
                let url: url::Url = endpoint.parse().unwrap();
                prop_assert_eq!(url.scheme(), "https");
                prop_assert_eq!(url.host_str(), Some(host.as_str()));
                prop_assert_eq!(url.path(), "/");
            }
            Err(S3Error::AccountId) => prop_assert!(!account_ok),
            Err(S3Error::Jurisdiction) => {
                prop_assert!(account_ok);
                prop_assert!(!["", "default", "eu", "fedramp"].contains(&jurisdiction));
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn credential_secret_names_are_env_safe(name in tricky_string()) {
        let (id, secret) = credential_secrets(&name);
        let mid = |s: &str, suffix: &str| {
            s.strip_prefix("LOCKER_S3_").and_then(|s| s.strip_suffix(suffix)).map(str::to_owned)
        };
        let a = mid(&id, "_ACCESS_KEY_ID");
        let b = mid(&secret, "_SECRET_ACCESS_KEY");
        prop_assert_eq!(&a, &b);
        let a = a.unwrap();
        prop_assert!(a.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'));
        prop_assert_eq!(a.chars().count(), name.chars().count());
    }

    #[test]
    fn endpoints_never_panic(endpoint in tricky_string(), name in "[a-z0-9.-]{0,70}") {
        let _ = S3Bucket::new(&endpoint, &name, "auto", true, "K", "S");
    }

    /// Presigning takes any clock and expiry without panicking: out-of-range values are
    /// typed errors.
    #[test]
    fn presigning_checks_clock_and_expiry(now in any::<u64>(), expires in any::<u64>()) {
        let got = bucket().presign_get("t/a/sha256/x", now, expires, None, None);
        if !(1..=7 * 24 * 3600).contains(&expires) {
            prop_assert_eq!(got, Err(S3Error::Expiry(expires)));
        } else if now > 253_402_207_199 {
            // jiff's Timestamp ends with year 9999.
            prop_assert_eq!(got, Err(S3Error::Clock));
        } else {
            prop_assert!(got.is_ok());
        }
    }

    /// A presigned URL names exactly the object key it was made for, or presigning refuses
    /// the key, and only for the documented reasons.
    #[test]
    fn presigned_urls_name_their_key(
        key in prop_oneof![
            (tenant(), any::<[u8; 32]>()).prop_map(|(t, h)| ObjectKey::for_blob(
                &Tenant::parse(&t).unwrap(), &Sha256Hex::from_bytes(h)).to_string()),
            "[a-zA-Z0-9 !$&'()*+,;=:@._~%?#é名/\\\t-]{0,40}",
            "[a./%2e\\\\]{0,10}",
            tricky_string(),
        ],
    ) {
        let representable = !key.is_empty() && !key.split('/').any(|s| s == "." || s == "..");
        match bucket().presign_get(&key, NOW, 300, Some("inline"), Some("text/plain")) {
            Ok(url) => {
                prop_assert!(representable, "{key:?}");
                let url: url::Url = url.parse().unwrap();
                let path = percent_decode_str(url.path()).decode_utf8().unwrap();
                prop_assert_eq!(path, format!("/e2e/{key}"));
                prop_assert_eq!(url.fragment(), None);
            }
            Err(e) => {
                prop_assert!(!representable, "{key:?}");
                prop_assert_eq!(e, S3Error::Key(key.clone()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bearer credentials

proptest! {
    #![proptest_config(config())]

    /// The prefix alone decides the kind, the parts are what the text holds, and a parsed
    /// credential renders back to exactly its text.
    #[test]
    fn credentials_are_classified_by_prefix(s in prop_oneof![
        tricky_string(),
        "(lk_|lkt_|lk|LK_)[a-z0-9._-]{0,12}",
        tricky_string().prop_map(|s| format!("{KEY_PREFIX}{s}")),
        tricky_string().prop_map(|s| format!("{TOKEN_PREFIX}{s}")),
    ]) {
        let got = Credential::parse(&s);
        if let Ok(c) = got {
            prop_assert_eq!(c.to_string(), s.clone());
        }
        if let Some(token) = s.strip_prefix(TOKEN_PREFIX) {
            prop_assert_eq!(got, Ok(Credential::UploadToken(token)));
        } else if let Some(key) = s.strip_prefix(KEY_PREFIX) {
            match got {
                Ok(Credential::ApiKey { id, secret }) => {
                    prop_assert!(!id.is_empty() && !id.contains('.') && !secret.is_empty());
                    prop_assert_eq!(format!("{id}.{secret}"), key);
                }
                Err(CredentialError::MalformedKey) => {
                    let parts = key.split_once('.');
                    prop_assert!(parts.is_none_or(|(id, secret)| id.is_empty() || secret.is_empty()));
                }
                other => prop_assert!(false, "{s:?} -> {other:?}"),
            }
        } else {
            prop_assert_eq!(got, Ok(Credential::Other(&s)));
        }
    }

    /// Every key the Worker mints (16 hex digits, a base64url secret) parses back into its
    /// parts; so does any id without `.` and any non-empty secret.
    #[test]
    fn api_keys_parse_back_into_their_parts(
        (id, secret) in prop_oneof![
            ("[0-9a-f]{16}", "[A-Za-z0-9_-]{43}"),
            ("[^.]{1,20}", any::<String>().prop_filter("secret is non-empty", |s| !s.is_empty())),
        ],
    ) {
        let text = format!("{KEY_PREFIX}{id}.{secret}");
        prop_assert_eq!(
            Credential::parse(&text),
            Ok(Credential::ApiKey { id: &id, secret: &secret })
        );
    }
}
