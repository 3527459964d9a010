//! Content rules: MIME types, allow-lists, size limits, magic numbers, and how bytes are served.

/// Largest single-request upload through the Worker's data plane (the worker transport and the
/// gateway's PUT). The Worker's request body limit is 100 MB on the Free and Pro plans.
pub const MAX_SINGLE_UPLOAD: u64 = 100 * 1000 * 1000;

/// Largest single presigned PUT straight to storage (the s3 transport): S3 and R2 take at most
/// 5 GB in one PutObject; larger files need multipart.
pub const MAX_DIRECT_PUT: u64 = 5 * 1000 * 1000 * 1000;

/// Why a content type or size was refused. Messages are shown to clients as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Not `type/subtype` in lowercase token characters.
    #[error("content_type must be a MIME type like 'image/png' (lowercase, no parameters)")]
    BadContentType,
    /// Not on the allow-list that applies.
    #[error("content type '{0}' is not allowed here")]
    TypeNotAllowed(String),
    /// Over the size limit that applies.
    #[error("file is {size} bytes; the limit here is {limit} bytes")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// Limit that applied.
        limit: u64,
    },
    /// The stored bytes are not what the declared type says.
    #[error("the bytes are {actual}, not the declared {declared}")]
    MagicMismatch {
        /// Declared type.
        declared: String,
        /// What the bytes look like.
        actual: &'static str,
    },
}

/// Checks a content type: `type/subtype`, lowercase RFC 7230 token characters, at most 127 bytes.
/// Parameters (`; charset=...`) are refused so one type has one spelling in the registry.
pub fn content_type(s: &str) -> Result<&str, ContentError> {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&-^_.+".contains(&c))
    };
    match s.split_once('/') {
        Some((ty, sub)) if s.len() <= 127 && token(ty) && token(sub) => Ok(s),
        _ => Err(ContentError::BadContentType),
    }
}

/// Whether `content_type` matches an allow-list entry: exact, `type/*`, or `*/*`.
pub fn type_allowed(content_type: &str, allow: &[String]) -> bool {
    allow.iter().any(|pattern| {
        pattern == "*/*"
            || pattern == content_type
            || pattern
                .strip_suffix("/*")
                .is_some_and(|ty| content_type.split('/').next() == Some(ty))
    })
}

/// Checks `size` against `limit`.
pub fn size_within(size: u64, limit: u64) -> Result<(), ContentError> {
    if size > limit {
        Err(ContentError::TooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// Known signatures: (content type, offset, magic bytes).
const SIGNATURES: &[(&str, usize, &[u8])] = &[
    ("image/png", 0, b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", 0, b"\xff\xd8\xff"),
    ("image/gif", 0, b"GIF87a"),
    ("image/gif", 0, b"GIF89a"),
    ("image/webp", 8, b"WEBP"),
    ("application/pdf", 0, b"%PDF-"),
    ("application/zip", 0, b"PK\x03\x04"),
    ("application/gzip", 0, b"\x1f\x8b"),
    ("application/wasm", 0, b"\0asm"),
];

/// How many leading bytes [`sniff`] needs.
pub const SNIFF_LEN: usize = 16;

/// The type the leading bytes announce, if they carry a signature we know.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    SIGNATURES
        .iter()
        .find(|(_, offset, magic)| head.get(*offset..offset + magic.len()) == Some(*magic))
        .map(|(ty, _, _)| *ty)
}

/// Whether `declared` has a signature we know (so its bytes must carry it).
fn has_signature(declared: &str) -> bool {
    SIGNATURES.iter().any(|(ty, _, _)| *ty == declared)
}

/// Checks stored bytes against the declared type and the allow-list:
/// - a declared type with a known signature must carry it;
/// - bytes that announce another known type must not, unless that type is allowed too (a
///   `.docx` declared as its own type is a zip, which is fine when zips are allowed).
pub fn magic_matches(declared: &str, head: &[u8], allow: &[String]) -> Result<(), ContentError> {
    let actual = sniff(head);
    match actual {
        Some(actual) if actual == declared => Ok(()),
        Some(actual) if has_signature(declared) || !type_allowed(actual, allow) => {
            Err(ContentError::MagicMismatch {
                declared: declared.to_owned(),
                actual,
            })
        }
        Some(_) => Ok(()),
        None if has_signature(declared) => Err(ContentError::MagicMismatch {
            declared: declared.to_owned(),
            actual: "of no type locker recognizes",
        }),
        None => Ok(()),
    }
}

/// Whether serving `content_type` inline could run script in the serving origin: HTML, SVG,
/// XML, JavaScript and anything unknown to be safe. Such bytes are served as attachments.
pub fn must_download(content_type: &str) -> bool {
    const INLINE_SAFE: &[&str] = &[
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "application/pdf",
        "text/plain",
        "text/csv",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "video/mp4",
        "video/webm",
        "application/json",
    ];
    !INLINE_SAFE.contains(&content_type)
}

/// A `Content-Disposition` value for `file_name`: ASCII fallback plus RFC 5987 UTF-8 form.
pub fn content_disposition(attachment: bool, file_name: &str) -> String {
    let kind = if attachment { "attachment" } else { "inline" };
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The type a file is uploaded as, from the type a browser reports: without parameters
/// (`text/plain;charset=utf-8` and friends: the registry keeps one spelling per type) and in
/// lower case, or `application/octet-stream` when the browser reports none.
pub fn upload_content_type(reported: &str) -> String {
    match reported.split(';').next().unwrap_or_default().trim() {
        "" => "application/octet-stream".to_owned(),
        t => t.to_ascii_lowercase(),
    }
}

/// Whether a file fits an HTML `accept` list (entries trimmed, compared without regard to
/// case, as browsers do): `.ext` against the file's name, `type/*` or `type/subtype` against
/// its content type. An empty list accepts everything.
pub fn accepted(accept: &[String], name: &str, content_type: &str) -> bool {
    if accept.is_empty() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    accept.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        if a.starts_with('.') {
            name.ends_with(a.as_str())
        } else {
            type_allowed(content_type, std::slice::from_ref(&a))
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_type_a_file_is_uploaded_as() {
        assert_eq!(upload_content_type(""), "application/octet-stream");
        assert_eq!(
            upload_content_type("Text/Plain; charset=UTF-8"),
            "text/plain"
        );
        assert_eq!(upload_content_type(" image/png "), "image/png");
        assert_eq!(upload_content_type(";x=y"), "application/octet-stream");
    }

    #[test]
    fn an_accept_list_matches_like_a_browser() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(accepted(&[], "a.exe", "application/x-msdownload"));
        let accept = list(&[".PDF", " image/* "]);
        assert!(accepted(&accept, "Deck.pdf", "application/octet-stream"));
        assert!(accepted(&accept, "cat.jpg", "image/jpeg"));
        assert!(!accepted(&accept, "notes.txt", "text/plain"));
        assert!(
            !accepted(&accept, "pdf", "text/plain"),
            "an extension needs its dot"
        );
        assert!(accepted(&list(&["text/plain"]), "x", "text/plain"));
        assert!(!accepted(&list(&["text/plain"]), "x", "text/html"));
    }

    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn content_type_syntax() {
        for ok in [
            "image/png",
            "application/vnd.ms-excel",
            "text/x-c++src",
            "a/b",
        ] {
            assert_eq!(content_type(ok), Ok(ok));
        }
        for bad in [
            "",
            "png",
            "image/",
            "/png",
            "Image/PNG",
            "text/plain; charset=utf-8",
            "a/b/c",
            "a b/c",
        ] {
            assert_eq!(
                content_type(bad),
                Err(ContentError::BadContentType),
                "{bad}"
            );
        }
    }

    #[test]
    fn allow_lists() {
        let allow = list(&["image/*", "application/pdf"]);
        assert!(type_allowed("image/png", &allow));
        assert!(type_allowed("application/pdf", &allow));
        assert!(!type_allowed("application/zip", &allow));
        assert!(!type_allowed("imagex/png", &allow));
        assert!(type_allowed("text/html", &list(&["*/*"])));
        assert!(!type_allowed("text/html", &[]));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_within(10, 10), Ok(()));
        assert_eq!(
            size_within(11, 10),
            Err(ContentError::TooLarge {
                size: 11,
                limit: 10
            })
        );
    }

    #[test]
    fn magic_numbers() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let any = list(&["*/*"]);
        assert_eq!(sniff(png), Some("image/png"));
        assert_eq!(magic_matches("image/png", png, &any), Ok(()));
        // Declared PNG, bytes are text.
        assert!(matches!(
            magic_matches("image/png", b"<html><script>", &any),
            Err(ContentError::MagicMismatch { .. })
        ));
        // Declared text, bytes are a PDF, and PDFs are not allowed here.
        assert!(magic_matches("text/plain", b"%PDF-1.7", &list(&["text/*"])).is_err());
        // Declared docx (no signature of its own), bytes are a zip, zips allowed.
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(magic_matches(docx, b"PK\x03\x04....", &any), Ok(()));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"ab"), None);
        assert_eq!(
            magic_matches("text/plain", b"hello", &list(&["text/*"])),
            Ok(())
        );
    }

    #[test]
    fn script_capable_types_download() {
        for t in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "text/javascript",
            "application/x-unknown",
        ] {
            assert!(must_download(t), "{t}");
        }
        for t in ["image/png", "application/pdf", "text/plain"] {
            assert!(!must_download(t), "{t}");
        }
    }

    #[test]
    fn disposition_quotes_safely() {
        assert_eq!(
            content_disposition(true, "a \"b\".txt"),
            "attachment; filename=\"a _b_.txt\"; filename*=UTF-8''a%20%22b%22.txt"
        );
        assert_eq!(
            content_disposition(false, "名.png"),
            "inline; filename=\"_.png\"; filename*=UTF-8''%E5%90%8D.png"
        );
    }
}
