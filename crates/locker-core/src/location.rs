//! What a command-line user writes for "where": `locker://ns/prefix/` (a folder-like place in a
//! namespace) or `locker://ns/path` (one file), and how local file names become paths there.
//!
//! A trailing `/` is what tells a place from a file, as in `aws s3 cp` and rsync: `locker://ns`
//! and `locker://ns/` are the whole namespace, `locker://ns/a/b/` the prefix `a/b/`,
//! `locker://ns/a/b` the file `a/b`. Every path built from a place is validated with the same
//! grammar as a ref ([`LogicalPath::parse`]), so a local file name that could not be a path is
//! refused here, before anything is sent.

use std::fmt;

use crate::refs::{LockerRef, LogicalPath, Namespace, RefError, SCHEME};

/// A namespace and a prefix inside it: empty, or valid path segments followed by `/`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Place {
    /// The namespace.
    pub namespace: Namespace,
    prefix: String,
}

impl Place {
    /// The prefix: `""` or `a/b/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The file at `relative` below this place. `relative` is `/`-separated (a path relative
    /// to a local directory, already turned into `/` separators); it must itself be a valid
    /// path, so `..`, empty segments and the like are refused, never resolved.
    pub fn join(&self, relative: &str) -> Result<LockerRef, RefError> {
        let path = LogicalPath::parse(&format!("{}{relative}", self.prefix))?;
        Ok(LockerRef::new(self.namespace.clone(), path))
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.namespace, self.prefix)
    }
}

/// A parsed `locker://` argument.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Location {
    /// Ends in `/` (or names the namespace alone): a place files go into or are listed from.
    Place(Place),
    /// One file.
    File(LockerRef),
}

impl Location {
    /// Parses `locker://ns`, `locker://ns/`, `locker://ns/prefix/` or `locker://ns/path`.
    pub fn parse(s: &str) -> Result<Self, RefError> {
        let rest = s.strip_prefix(SCHEME).ok_or(RefError::Scheme)?;
        let (ns, path) = rest.split_once('/').unwrap_or((rest, ""));
        let namespace = Namespace::parse(ns)?;
        if path.is_empty() {
            return Ok(Self::Place(Place {
                namespace,
                prefix: String::new(),
            }));
        }
        match path.strip_suffix('/') {
            Some(dir) => {
                // The prefix without its slash must be a path: `//`, `a//` and `../` are refused.
                if dir.is_empty() {
                    return Err(RefError::EmptySegment);
                }
                LogicalPath::parse(dir)?;
                Ok(Self::Place(Place {
                    namespace,
                    prefix: path.to_owned(),
                }))
            }
            None => Ok(Self::File(LockerRef::new(
                namespace,
                LogicalPath::parse(path)?,
            ))),
        }
    }

    /// The namespace, either way.
    pub fn namespace(&self) -> &Namespace {
        match self {
            Self::Place(p) => &p.namespace,
            Self::File(r) => &r.namespace,
        }
    }

    /// What to list for this location: a place's prefix, or a file's path taken as a prefix
    /// (so `ls locker://ns/a/b` also shows `a/b` itself and `a/bc`, as `aws s3 ls` does).
    pub fn list_prefix(&self) -> &str {
        match self {
            Self::Place(p) => p.prefix(),
            Self::File(r) => r.path.as_str(),
        }
    }
}

/// Why a duration such as `1h` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: use seconds or a number with s, m, h or d (90, 15m, 1h, 7d)")]
pub struct DurationError(pub String);

/// Seconds in `90`, `90s`, `15m`, `1h` or `7d`. Zero and overflow are refused.
pub fn parse_duration_s(s: &str) -> Result<u64, DurationError> {
    let err = || DurationError(s.to_owned());
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    let n: u64 = digits.parse().map_err(|_| err())?;
    n.checked_mul(factor).filter(|&v| v > 0).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(s: &str) -> Place {
        match Location::parse(s).unwrap() {
            Location::Place(p) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn trailing_slash_tells_a_place_from_a_file() {
        assert_eq!(place("locker://corp").prefix(), "");
        assert_eq!(place("locker://corp/").prefix(), "");
        assert_eq!(place("locker://corp/q3/").prefix(), "q3/");
        assert_eq!(place("locker://corp/a/b c/").prefix(), "a/b c/");
        assert_eq!(
            place("locker://corp/a/b/").to_string(),
            "locker://corp/a/b/"
        );
        match Location::parse("locker://corp/q3/deck.pdf").unwrap() {
            Location::File(r) => assert_eq!(r.to_string(), "locker://corp/q3/deck.pdf"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_what_a_ref_refuses() {
        let cases = [
            ("corp/a", RefError::Scheme),
            ("s3://corp/a", RefError::Scheme),
            ("locker://", RefError::NamespaceLength),
            ("locker:///a/", RefError::NamespaceLength),
            ("locker://Corp/", RefError::NamespaceChars),
            ("locker://corp//", RefError::EmptySegment),
            ("locker://corp/a//", RefError::EmptySegment),
            ("locker://corp/../", RefError::DotSegment),
            ("locker://corp/a/../b", RefError::DotSegment),
            ("locker://corp/%2e%2e/", RefError::PercentEscape),
            ("locker://corp/a\\b/", RefError::Backslash),
            ("locker://corp/a\nb", RefError::ControlChar),
        ];
        for (input, want) in cases {
            assert_eq!(Location::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn join_builds_valid_refs_only() {
        let p = place("locker://corp/up/");
        assert_eq!(
            p.join("a/b.txt").unwrap().to_string(),
            "locker://corp/up/a/b.txt"
        );
        assert_eq!(
            place("locker://corp").join("x").unwrap().to_string(),
            "locker://corp/x"
        );
        assert_eq!(p.join("../x"), Err(RefError::DotSegment));
        assert_eq!(p.join(""), Err(RefError::EmptySegment));
        assert_eq!(p.join("a\\b"), Err(RefError::Backslash));
        assert_eq!(p.join("100%41"), Err(RefError::PercentEscape));
    }

    #[test]
    fn list_prefix() {
        let at = |s: &str| Location::parse(s).unwrap().list_prefix().to_owned();
        assert_eq!(at("locker://corp"), "");
        assert_eq!(at("locker://corp/a/"), "a/");
        assert_eq!(at("locker://corp/a/b"), "a/b");
        assert_eq!(
            Location::parse("locker://corp/a")
                .unwrap()
                .namespace()
                .as_str(),
            "corp"
        );
    }

    #[test]
    fn durations() {
        for (s, want) in [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("7d", 604_800),
        ] {
            assert_eq!(parse_duration_s(s), Ok(want), "{s}");
        }
        for s in [
            "",
            "0",
            "0h",
            "h",
            "1.5h",
            "-1",
            "1w",
            "1 h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration_s(s).is_err(), "{s}");
        }
    }
}
