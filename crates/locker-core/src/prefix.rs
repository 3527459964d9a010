//! Prefix queries as ranges: `path >= prefix AND path < upper_bound(prefix)` lets an index on
//! `path` serve a prefix listing, where `substr(path, 1, length(prefix)) = prefix` would read
//! every row of the namespace.
//!
//! SQLite (and so D1) compares TEXT with the BINARY collation: byte by byte over UTF-8. UTF-8
//! byte order is code point order, so the bound is computed on `char`s. A `&str` holds no
//! 0xF5-0xFF bytes; the largest character, U+10FFFF (F4 8F BF BF), has no successor and is
//! carried over like a 9 in decimal.

/// The smallest string greater than every string that starts with `prefix`, or `None` when
/// there is none (the empty prefix, or one made only of U+10FFFF): then the range is open
/// above.
///
/// Why it is exact: let `c` be the last character of `prefix` that is not U+10FFFF, at
/// position `i`. The bound is `prefix[..i]` followed by the successor of `c`. A string with
/// the prefix has `c` at `i`, so it is below. A string at or above `prefix` without it first
/// differs from `prefix` at some `j`, with a larger character there: for `j < i` it is above
/// the bound, for `j == i` its character is at least the successor, and `j > i` cannot happen
/// since nothing is larger than U+10FFFF.
pub fn upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = successor(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value: surrogates (U+D800-U+DFFF) are not characters and are
/// skipped; U+10FFFF has none.
fn successor(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        c => char::from_u32(u32::from(c) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ascii_increments_the_last_character() {
        assert_eq!(upper_bound("a").as_deref(), Some("b"));
        assert_eq!(upper_bound("docs/").as_deref(), Some("docs0"));
        assert_eq!(upper_bound("a~").as_deref(), Some("a\u{7f}"));
        assert_eq!(upper_bound("a\u{7f}").as_deref(), Some("a\u{80}"));
    }

    #[test]
    fn the_empty_prefix_has_no_bound() {
        assert_eq!(upper_bound(""), None);
    }

    #[test]
    fn the_largest_character_carries_over() {
        assert_eq!(upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(upper_bound("ab\u{10FFFF}\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(upper_bound("\u{10FFFF}"), None);
        assert_eq!(upper_bound("\u{10FFFF}\u{10FFFF}"), None);
    }

    #[test]
    fn surrogates_are_skipped() {
        assert_eq!(upper_bound("x\u{D7FF}").as_deref(), Some("x\u{E000}"));
    }

    #[test]
    fn multibyte_characters_step_to_the_next_code_point() {
        assert_eq!(upper_bound("é").as_deref(), Some("ê"));
        assert_eq!(upper_bound("日本").as_deref(), Some("日札"));
        assert_eq!(upper_bound("\u{FFFF}").as_deref(), Some("\u{10000}"));
    }

    /// The range must select exactly the strings with the prefix, compared as SQLite's
    /// BINARY collation does: by UTF-8 bytes.
    fn in_range(s: &str, prefix: &str) -> bool {
        s.as_bytes() >= prefix.as_bytes()
            && upper_bound(prefix).is_none_or(|u| s.as_bytes() < u.as_bytes())
    }

    /// Characters near the edges the bound must handle, so that random strings often share a
    /// prefix and hit the carries.
    fn edge_string() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            Just('a'),
            Just('b'),
            Just('\u{7f}'),
            Just('\u{80}'),
            Just('\u{D7FF}'),
            Just('\u{E000}'),
            Just('\u{FFFF}'),
            Just('\u{10000}'),
            Just('\u{10FFFE}'),
            Just('\u{10FFFF}'),
            any::<char>(),
        ];
        proptest::collection::vec(c, 0..5).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_range_is_exactly_the_prefix(prefix in edge_string(), s in edge_string()) {
            prop_assert_eq!(in_range(&s, &prefix), s.starts_with(&prefix));
            let extended = format!("{prefix}{s}");
            prop_assert!(in_range(&extended, &prefix));
        }

        #[test]
        fn the_bound_is_above_the_prefix_and_lacks_it(prefix in edge_string()) {
            if let Some(u) = upper_bound(&prefix) {
                prop_assert!(!u.starts_with(&prefix));
                prop_assert!(u.as_bytes() > prefix.as_bytes());
            }
        }
    }
}
