//! `Range: bytes=...` request headers (RFC 9110 §14.1-14.2), for serving part of a stored blob.
//!
//! What is answered:
//! - no header, another range unit, or several ranges (`bytes=0-1,5-6`): `None`, the whole
//!   file (RFC 9110 lets a server ignore `Range`; multipart/byteranges is not worth it here);
//! - `bytes=a-b`, `bytes=a-` and `bytes=-n`: one range, clamped to the file;
//! - anything else after `bytes=`, or a range that selects no byte of the file (start at or
//!   past the end, `b < a`, `-0`, any range of a 0-byte file): an error, answered 416.
//!
//! Positions are 1*DIGIT only (no sign, no hex); optional whitespace (SP, HTAB) around each
//! number is tolerated. Numbers too large for `u64` saturate instead of failing: such a
//! `last-pos` or suffix length still means "to the end of the file" (RFC 9110 §14.1.2), and
//! such a `first-pos` is past the end of any file.

use std::fmt;

/// The range unit locker serves; compared case-insensitively (RFC 9110 §14.1).
const UNIT: &str = "bytes";

/// One satisfiable range of a file: `first..=last`, with `first <= last < size` for the size
/// it was parsed against. Only [`ByteRange::parse`] makes one, so the invariant always holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ByteRange {
    first: u64,
    last: u64,
}

/// Why a `Range` header cannot be answered; both are `416 Range Not Satisfiable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A `bytes=` header that is not `a-b`, `a-` or `-n` in decimal digits.
    #[error("malformed Range header; the file has {size} bytes")]
    Malformed {
        /// Size of the file the range was for.
        size: u64,
    },
    /// Well-formed, but selects no byte of the file.
    #[error("the range is outside the file; the file has {size} bytes")]
    Unsatisfiable {
        /// Size of the file the range was for.
        size: u64,
    },
}

impl ByteRange {
    /// The range `header` asks for in a file of `size` bytes: `Ok(None)` means serve it all.
    pub fn parse(header: Option<&str>, size: u64) -> Result<Option<Self>, RangeError> {
        let Some((unit, spec)) = header.and_then(|h| h.split_once('=')) else {
            return Ok(None);
        };
        if !unit.eq_ignore_ascii_case(UNIT) || spec.contains(',') {
            return Ok(None);
        }
        let malformed = RangeError::Malformed { size };
        let unsatisfiable = RangeError::Unsatisfiable { size };
        let (first, last) = spec.split_once('-').ok_or(malformed.clone())?;
        let (first, last) = (trim_ows(first), trim_ows(last));
        let (first, last) = match (first.is_empty(), last.is_empty()) {
            (true, true) => return Err(malformed),
            // `-n`: the last n bytes, or the whole file if it is shorter.
            (true, false) => {
                let suffix = digits(last).ok_or(malformed)?;
                if suffix == 0 || size == 0 {
                    return Err(unsatisfiable);
                }
                (size.saturating_sub(suffix), size - 1)
            }
            (false, true) => (digits(first).ok_or(malformed)?, u64::MAX),
            (false, false) => {
                let first = digits(first).ok_or(malformed.clone())?;
                let last = digits(last).ok_or(malformed)?;
                if last < first {
                    // RFC 9110 calls `b < a` invalid, not merely unsatisfiable.
                    return Err(RangeError::Malformed { size });
                }
                (first, last)
            }
        };
        if first >= size {
            return Err(unsatisfiable);
        }
        Ok(Some(Self {
            first,
            last: last.min(size - 1),
        }))
    }

    /// Offset of the first byte served.
    pub const fn first(&self) -> u64 {
        self.first
    }

    /// Offset of the last byte served (inclusive).
    pub const fn last(&self) -> u64 {
        self.last
    }

    /// How many bytes are served; at least 1.
    pub const fn length(&self) -> u64 {
        self.last - self.first + 1
    }

    /// The ranges that read a file of `size` bytes in order, each `chunk` bytes but the last
    /// (1 to `chunk`): what the Worker asks storage for when it reads an object back in
    /// ranged GETs side by side. None for an empty file (no range selects a byte of it), and
    /// one range of the whole file for a `chunk` of 0.
    pub fn cover(size: u64, chunk: u64) -> impl Iterator<Item = Self> {
        let chunk = if chunk == 0 { size } else { chunk };
        (0..size.div_ceil(chunk.max(1))).map(move |i| {
            let first = i * chunk;
            Self {
                first,
                last: first.saturating_add(chunk).min(size) - 1,
            }
        })
    }

    /// The `Content-Range` value of a 206 answer for a file of `size` bytes.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.first, self.last)
    }
}

impl fmt::Display for ByteRange {
    /// The range as a request header value, `bytes=a-b`: parsing it back against the same
    /// size gives the same range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{UNIT}={}-{}", self.first, self.last)
    }
}

/// Optional whitespace is SP and HTAB only (RFC 9110 §5.6.3).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `1*DIGIT` as a number, saturating at `u64::MAX` (see the module doc).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, c| {
        n.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(header: &str, size: u64) -> Result<Option<(u64, u64)>, RangeError> {
        ByteRange::parse(Some(header), size).map(|r| r.map(|r| (r.first(), r.last())))
    }

    #[test]
    fn cover_reads_every_byte_once_in_order() {
        let of = |size, chunk| -> Vec<(u64, u64)> {
            ByteRange::cover(size, chunk)
                .map(|r| (r.first(), r.last()))
                .collect()
        };
        assert_eq!(of(0, 8), vec![]);
        assert_eq!(of(1, 8), vec![(0, 0)]);
        assert_eq!(of(8, 8), vec![(0, 7)]);
        assert_eq!(of(9, 8), vec![(0, 7), (8, 8)]);
        assert_eq!(of(20, 8), vec![(0, 7), (8, 15), (16, 19)]);
        assert_eq!(of(5, 0), vec![(0, 4)]);
        let gib = 1u64 << 30;
        let ranges: Vec<ByteRange> = ByteRange::cover(gib + 1, 8 << 20).collect();
        assert_eq!(ranges.len(), 129);
        assert_eq!(ranges.iter().map(ByteRange::length).sum::<u64>(), gib + 1);
        assert!(ranges.windows(2).all(|w| w[1].first() == w[0].last() + 1));
        // As the Worker sends and checks them: the header parses back to the same range, and
        // a 206 names it against the whole object.
        let last = ranges[128];
        assert_eq!(last.to_string(), format!("bytes={gib}-{gib}"));
        assert_eq!(
            ByteRange::parse(Some(&last.to_string()), gib + 1),
            Ok(Some(last))
        );
        assert_eq!(
            ranges[1].content_range(gib + 1),
            format!("bytes 8388608-16777215/{}", gib + 1)
        );
    }

    #[test]
    fn the_three_forms() {
        assert_eq!(p("bytes=100-199", 1000), Ok(Some((100, 199))));
        assert_eq!(p("bytes=0-0", 1), Ok(Some((0, 0))));
        assert_eq!(p("bytes=990-", 1000), Ok(Some((990, 999))));
        assert_eq!(p("bytes=-10", 1000), Ok(Some((990, 999))));
        // Clamped to the file.
        assert_eq!(p("bytes=990-5000", 1000), Ok(Some((990, 999))));
        assert_eq!(p("bytes=-5000", 1000), Ok(Some((0, 999))));
    }

    #[test]
    fn whole_file_when_not_one_byte_range() {
        assert_eq!(ByteRange::parse(None, 10), Ok(None));
        for h in [
            "",
            "bytes",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=0-1,",
            "bytes=garbage,0-1",
        ] {
            assert_eq!(p(h, 10), Ok(None), "{h:?}");
        }
        // The unit is case-insensitive (RFC 9110 §14.1).
        assert_eq!(p("Bytes=1-2", 10), Ok(Some((1, 2))));
    }

    #[test]
    fn unsatisfiable() {
        let u = Err(RangeError::Unsatisfiable { size: 10 });
        for h in [
            "bytes=10-",
            "bytes=10-20",
            "bytes=-0",
            "bytes=18446744073709551615-",
        ] {
            assert_eq!(p(h, 10), u, "{h:?}");
        }
        for h in [
            "bytes=0-",
            "bytes=0-0",
            "bytes=-1",
            "bytes=-18446744073709551616",
        ] {
            assert_eq!(p(h, 0), Err(RangeError::Unsatisfiable { size: 0 }), "{h:?}");
        }
    }

    #[test]
    fn malformed() {
        for h in [
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=5-3",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+2",
            "bytes=0x1-2",
            "bytes=1-2-3",
            "bytes=a-b",
            "bytes=1 2-3",
            "bytes=１-2",
            "bytes=\u{a0}1-2",
        ] {
            assert_eq!(p(h, 10), Err(RangeError::Malformed { size: 10 }), "{h:?}");
        }
    }

    #[test]
    fn whitespace_around_numbers() {
        assert_eq!(p("bytes= 1 - 2 ", 10), Ok(Some((1, 2))));
        assert_eq!(p("bytes=\t-3\t", 10), Ok(Some((7, 9))));
    }

    /// Regression: `u64::from_str` accepts a leading `+` and fails on numbers past `u64::MAX`;
    /// the Worker's old parser therefore served `bytes=+0-+1` and refused a huge `last-pos`
    /// that RFC 9110 says means "to the end".
    #[test]
    fn digits_only_and_overflow_saturates() {
        assert_eq!(p("bytes=+0-1", 10), Err(RangeError::Malformed { size: 10 }));
        let huge = "99999999999999999999999999";
        assert_eq!(p(&format!("bytes=2-{huge}"), 10), Ok(Some((2, 9))));
        assert_eq!(p(&format!("bytes=-{huge}"), 10), Ok(Some((0, 9))));
        assert_eq!(
            p(&format!("bytes={huge}-"), u64::MAX),
            Err(RangeError::Unsatisfiable { size: u64::MAX })
        );
        let max = u64::MAX;
        assert_eq!(
            p(&format!("bytes={}-", max - 1), max),
            Ok(Some((max - 1, max - 1)))
        );
    }

    #[test]
    fn headers_and_rendering() {
        let r = ByteRange::parse(Some("bytes=100-199"), 1000)
            .unwrap()
            .unwrap();
        assert_eq!(r.length(), 100);
        assert_eq!(r.content_range(1000), "bytes 100-199/1000");
        assert_eq!(r.to_string(), "bytes=100-199");
    }
}
