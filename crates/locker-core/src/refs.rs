//! `locker://{namespace}/{path}`: the public name of a file.
//!
//! Grammar (checked by the constructors; once you hold a value it is valid):
//! - namespace: 1..=63 bytes of `a-z 0-9 - _`, starting with a letter or digit;
//! - path: 1..=1024 bytes of `/`-separated segments, each 1..=255 bytes, none `.` or `..`,
//!   no `\`, no control characters (C0, DEL, C1), no percent-escapes (`%2e`), no leading or
//!   trailing `/`. A path is plain text: percent-encoding belongs to URLs, and refusing it here
//!   means `%2e%2e` can never be decoded into `..` by a later layer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 63;
/// Longest path, in bytes (UTF-8).
pub const MAX_PATH_LEN: usize = 1024;
/// Longest path segment, in bytes (most filesystems' file-name limit).
pub const MAX_SEGMENT_LEN: usize = 255;
/// The scheme every ref starts with.
pub const SCHEME: &str = "locker://";

/// Why a namespace, path or ref was refused. Messages are shown to API clients as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// The namespace is empty or longer than [`MAX_NAMESPACE_LEN`].
    #[error("namespace must be 1 to {MAX_NAMESPACE_LEN} characters")]
    NamespaceLength,
    /// The namespace has a character outside `a-z 0-9 - _` or starts with `-`/`_`.
    #[error(
        "namespace may contain only a-z, 0-9, '-' and '_', and must start with a letter or digit"
    )]
    NamespaceChars,
    /// The path is empty or longer than [`MAX_PATH_LEN`] bytes.
    #[error("path must be 1 to {MAX_PATH_LEN} bytes")]
    PathLength,
    /// The path starts or ends with `/`, or has `//`.
    #[error("path must not start or end with '/' or contain empty segments")]
    EmptySegment,
    /// A segment is `.` or `..`.
    #[error("path must not contain '.' or '..' segments")]
    DotSegment,
    /// A segment is longer than [`MAX_SEGMENT_LEN`] bytes.
    #[error("each path segment must be at most {MAX_SEGMENT_LEN} bytes")]
    SegmentLength,
    /// The path has a backslash.
    #[error("path must not contain '\\'")]
    Backslash,
    /// The path has a control character.
    #[error("path must not contain control characters")]
    ControlChar,
    /// The path has a `%XX` escape.
    #[error("path must not contain percent-escapes such as '%2e'")]
    PercentEscape,
    /// A ref does not start with `locker://`.
    #[error("ref must start with 'locker://'")]
    Scheme,
    /// A ref has no `/` between namespace and path.
    #[error("ref must be locker://{{namespace}}/{{path}}")]
    MissingPath,
}

/// A validated namespace (`corp`, `deck`, `emails`, ...).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Namespace(String);

impl Namespace {
    /// Validates a namespace.
    pub fn parse(s: &str) -> Result<Self, RefError> {
        if s.is_empty() || s.len() > MAX_NAMESPACE_LEN {
            return Err(RefError::NamespaceLength);
        }
        let ok_char =
            |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_';
        let first_ok = s
            .as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !first_ok || !s.bytes().all(ok_char) {
            return Err(RefError::NamespaceChars);
        }
        Ok(Self(s.to_owned()))
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated logical path inside a namespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LogicalPath(String);

impl LogicalPath {
    /// Validates a path.
    pub fn parse(s: &str) -> Result<Self, RefError> {
        if s.is_empty() || s.len() > MAX_PATH_LEN {
            return Err(RefError::PathLength);
        }
        if s.chars().any(char::is_control) {
            return Err(RefError::ControlChar);
        }
        if s.contains('\\') {
            return Err(RefError::Backslash);
        }
        if has_percent_escape(s) {
            return Err(RefError::PercentEscape);
        }
        for segment in s.split('/') {
            match segment {
                "" => return Err(RefError::EmptySegment),
                "." | ".." => return Err(RefError::DotSegment),
                seg if seg.len() > MAX_SEGMENT_LEN => return Err(RefError::SegmentLength),
                _ => {}
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// A path for a file picked by a user: `prefix` followed by `file_name` made safe, since a
    /// file name is user input (`..`, `\\`, `%2e`, control characters and `/` are replaced by
    /// `_`, an over-long name keeps its end, where the extension is). The prefix is taken as
    /// given and must itself be valid (empty, or ending in `/`).
    pub fn for_file_name(prefix: &str, file_name: &str) -> Result<Self, RefError> {
        let mut name: String = file_name
            .trim()
            .chars()
            .map(|c| match c {
                '/' | '\\' | '%' => '_',
                c if c.is_control() => '_',
                c => c,
            })
            .collect();
        if name.is_empty() || name == "." || name == ".." {
            name = "file".to_owned();
        }
        while name.len() > MAX_SEGMENT_LEN {
            name.remove(0);
        }
        Self::parse(&format!("{prefix}{name}"))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: what a browser should call the file when saving it.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// `locker://{namespace}/{path}`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LockerRef {
    /// The namespace part.
    pub namespace: Namespace,
    /// The path part.
    pub path: LogicalPath,
}

impl LockerRef {
    /// A ref from already validated parts; cannot fail.
    pub fn new(namespace: Namespace, path: LogicalPath) -> Self {
        Self { namespace, path }
    }
}

impl fmt::Display for LockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.namespace.0, self.path.0)
    }
}

impl FromStr for LockerRef {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(SCHEME).ok_or(RefError::Scheme)?;
        let (ns, path) = rest.split_once('/').ok_or(RefError::MissingPath)?;
        Ok(Self::new(Namespace::parse(ns)?, LogicalPath::parse(path)?))
    }
}

macro_rules! string_serde {
    ($t:ty, $parse:expr) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for LogicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_serde!(Namespace, Namespace::parse);
string_serde!(LogicalPath, LogicalPath::parse);
string_serde!(LockerRef, LockerRef::from_str);

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<LockerRef, RefError> {
        s.parse()
    }

    #[test]
    fn file_names_become_safe_paths() {
        let p = |prefix: &str, name: &str| LogicalPath::for_file_name(prefix, name).map(|p| p.0);
        assert_eq!(p("", "report.pdf"), Ok("report.pdf".into()));
        assert_eq!(p("up/", "a b (1).png"), Ok("up/a b (1).png".into()));
        assert_eq!(p("", ".."), Ok("file".into()));
        assert_eq!(p("", "  "), Ok("file".into()));
        assert_eq!(p("", "..\\x"), Ok(".._x".into()));
        assert_eq!(p("", "a/../b"), Ok("a_.._b".into()));
        assert_eq!(p("", "%2e%2e"), Ok("_2e_2e".into()));
        assert_eq!(p("", "a\u{7}b\nc"), Ok("a_b_c".into()));
        let long = format!("{}.tar.gz", "x".repeat(300));
        let path = p("", &long).unwrap();
        assert_eq!(path.len(), MAX_SEGMENT_LEN);
        assert!(path.ends_with(".tar.gz"));
        // A bad prefix is still refused: only the file name is user input to be repaired.
        assert_eq!(p("../", "a"), Err(RefError::DotSegment));
    }

    #[test]
    fn renders_and_parses_back() {
        for s in [
            "locker://corp/a.txt",
            "locker://deck/2026/q3/board deck (final).pdf",
            "locker://hst/ünïcödé/名前.png",
            "locker://factory_1/a/b/c/d",
            "locker://emails/100%.txt",
            "locker://x/...",
        ] {
            let parsed = r(s).unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(r(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn refuses_traversal_and_tricks() {
        let cases = [
            ("locker://corp/../etc/passwd", RefError::DotSegment),
            ("locker://corp/a/./b", RefError::DotSegment),
            ("locker://corp/a/..", RefError::DotSegment),
            ("locker://corp/%2e%2e/x", RefError::PercentEscape),
            ("locker://corp/a%2Fb", RefError::PercentEscape),
            ("locker://corp/a\\b", RefError::Backslash),
            ("locker://corp/a\nb", RefError::ControlChar),
            ("locker://corp/a\u{0}b", RefError::ControlChar),
            ("locker://corp/a\u{85}b", RefError::ControlChar),
            ("locker://corp/a\u{7f}", RefError::ControlChar),
            ("locker://corp//a", RefError::EmptySegment),
            ("locker://corp/a/", RefError::EmptySegment),
            ("locker://corp/", RefError::PathLength),
            ("locker://corp", RefError::MissingPath),
            ("http://corp/a", RefError::Scheme),
            ("locker://Corp/a", RefError::NamespaceChars),
            ("locker://-corp/a", RefError::NamespaceChars),
            ("locker://co.rp/a", RefError::NamespaceChars),
            ("locker:///a", RefError::NamespaceLength),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn enforces_lengths() {
        assert_eq!(
            Namespace::parse(&"a".repeat(63)).unwrap().as_str().len(),
            63
        );
        assert_eq!(
            Namespace::parse(&"a".repeat(64)),
            Err(RefError::NamespaceLength)
        );
        let seg = "s".repeat(255);
        assert!(LogicalPath::parse(&seg).is_ok());
        assert_eq!(
            LogicalPath::parse(&"s".repeat(256)),
            Err(RefError::SegmentLength)
        );
        let long = vec!["abcd"; 205].join("/"); // 1024 bytes
        assert_eq!(long.len(), 1024);
        assert!(LogicalPath::parse(&long).is_ok());
        assert_eq!(
            LogicalPath::parse(&format!("{long}x")),
            Err(RefError::PathLength)
        );
    }

    #[test]
    fn file_name_is_last_segment() {
        assert_eq!(
            LogicalPath::parse("a/b/c.pdf").unwrap().file_name(),
            "c.pdf"
        );
        assert_eq!(LogicalPath::parse("c.pdf").unwrap().file_name(), "c.pdf");
    }

    #[test]
    fn serde_validates() {
        let parsed: LockerRef = serde_json::from_str("\"locker://corp/a.txt\"").unwrap();
        assert_eq!(parsed.path.as_str(), "a.txt");
        assert!(serde_json::from_str::<LogicalPath>("\"../a\"").is_err());
    }
}
