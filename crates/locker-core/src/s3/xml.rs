//! The little XML that S3 answers need: finding an element, its text, the five entities and
//! numeric references, and the S3 `<Error>` document. S3's answers are small and flat (no
//! namespaces prefixes, no CDATA in what is read here), so this is a reader of that shape, not a
//! general XML parser; the answers it is tested on are the ones servers write (AWS, R2, s3s).

/// Why a storage answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("storage refused: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("storage answered XML without {0}")]
    Missing(&'static str),
    #[error("storage answered a malformed {0}")]
    Malformed(&'static str),
}

pub(super) fn refused(xml: &str) -> Result<(), XmlError> {
    match crate::client::s3_error(xml) {
        Some((code, message)) => Err(XmlError::Refused { code, message }),
        None => Ok(()),
    }
}

/// The text inside the first `<name>` (or `<name attributes>`) .. `</name>`.
pub(super) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    next_element(xml, name).map(|(inner, _)| inner)
}

/// The first `<name ...>..</name>` in `xml`: its inner text and what follows it.
pub(super) fn next_element<'a>(xml: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut from = 0;
    loop {
        let start = from + xml.get(from..)?.find(&open)?;
        let after_name = xml.get(start + open.len()..)?;
        // `<Part>` but not `<PartNumber>`: the name must end at `>`, whitespace or `/`.
        match after_name.chars().next() {
            Some('>') => {
                let inner = after_name.get(1..)?;
                let end = inner.find(&close)?;
                return Some((inner.get(..end)?, inner.get(end + close.len()..)?));
            }
            Some(c) if c.is_whitespace() => {
                let gt = after_name.find('>')?;
                if after_name.get(..gt)?.ends_with('/') {
                    return Some(("", after_name.get(gt + 1..)?));
                }
                let inner = after_name.get(gt + 1..)?;
                let end = inner.find(&close)?;
                return Some((inner.get(..end)?, inner.get(end + close.len()..)?));
            }
            Some('/') => {
                let rest = after_name.get(after_name.find('>')? + 1..)?;
                return Some(("", rest));
            }
            _ => from = start + open.len(),
        }
    }
}

/// XML text to a string: the five predefined entities and numeric references.
pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        rest = rest.get(amp..).unwrap_or_default();
        let decoded = rest.find(';').and_then(|semi| {
            let name = rest.get(1..semi)?;
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => name.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = rest.get(len..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities() {
        assert_eq!(
            unescape("&quot;a&amp;b&#34;&#x27;&bogus;&"),
            "\"a&b\"'&bogus;&"
        );
        assert_eq!(escape("\"a&b'<>"), "&quot;a&amp;b&apos;&lt;&gt;");
        assert_eq!(unescape(&escape("x\"&<y>'")), "x\"&<y>'");
    }
}
