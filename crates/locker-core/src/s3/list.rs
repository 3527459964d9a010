//! ListObjectsV2 of an S3 bucket, signed here and sent by the Worker: the reconciler's orphan
//! scan walks a bucket's `t/` objects a page at a time. The answer is read like the multipart
//! answers (`s3::multipart`): a few known elements, no XML library in the Worker.

use rusty_s3::actions::ListObjectsV2;

use super::xml::{element, next_element, refused, unescape, XmlError};
use super::{signed, S3Bucket, S3Error};

/// An object in a ListObjectsV2 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    /// `LastModified`, unix milliseconds.
    pub last_modified_ms: u64,
}

/// A page of a ListObjectsV2 answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectsPage {
    pub objects: Vec<ListedObject>,
    /// The continuation token of the next page, when this one is truncated.
    pub next: Option<String>,
}

impl S3Bucket {
    /// ListObjectsV2 (`GET /?list-type=2&prefix=`): up to `max_keys` (1 to 1,000) objects under
    /// `prefix`, from `continuation` (a previous page's token) or from the start.
    pub fn presign_list_objects(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
        now_s: u64,
        expires_s: u64,
    ) -> Result<String, S3Error> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        action.with_prefix(prefix);
        action.with_max_keys(max_keys.clamp(1, 1000));
        if let Some(token) = continuation.filter(|t| !t.is_empty()) {
            action.with_continuation_token(token);
        }
        signed(&action, now_s, expires_s)
    }
}

/// `%XX` escapes decoded (keys come `encoding-type=url`, which the request asks for, so any
/// key survives XML); a key that does not decode to UTF-8 is kept as it came.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes.get(i), hex) {
            (Some(b'%'), Some(b)) => {
                out.push(b);
                i += 3;
            }
            (Some(&b), _) => {
                out.push(b);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// A page of a ListObjectsV2 answer (`ListBucketResult`).
pub fn parse_list_objects(xml: &str) -> Result<ObjectsPage, XmlError> {
    refused(xml)?;
    if element(xml, "ListBucketResult").is_none() {
        return Err(XmlError::Missing("ListBucketResult"));
    }
    let encoded = element(xml, "EncodingType").is_some_and(|e| e.trim() == "url");
    let mut objects = Vec::new();
    let mut rest = xml;
    while let Some((inner, after)) = next_element(rest, "Contents") {
        let key = element(inner, "Key")
            .map(unescape)
            .ok_or(XmlError::Malformed("Contents"))?;
        let key = if encoded { url_decode(&key) } else { key };
        let size = element(inner, "Size")
            .and_then(|n| n.trim().parse().ok())
            .ok_or(XmlError::Malformed("Contents"))?;
        let last_modified_ms = element(inner, "LastModified")
            .and_then(|t| t.trim().parse::<jiff::Timestamp>().ok())
            .and_then(|t| u64::try_from(t.as_millisecond()).ok())
            .ok_or(XmlError::Malformed("LastModified"))?;
        objects.push(ListedObject {
            key,
            size,
            last_modified_ms,
        });
        rest = after;
    }
    let truncated = element(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = if truncated {
        let token = element(xml, "NextContinuationToken")
            .map(|t| unescape(t.trim()))
            .filter(|t| !t.is_empty())
            .ok_or(XmlError::Malformed("NextContinuationToken"))?;
        Some(token)
    } else {
        None
    };
    Ok(ObjectsPage { objects, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::{query, KEY, MAY_24_2013, SECRET};

    #[test]
    fn signs_a_list_with_prefix_limit_and_token() {
        let bucket = S3Bucket::new(
            "http://127.0.0.1:8014",
            "locker",
            "us-east-1",
            true,
            KEY,
            SECRET,
        )
        .unwrap();
        let url = bucket
            .presign_list_objects("t/", Some("tok/en=="), 5000, MAY_24_2013, 300)
            .unwrap();
        assert!(url.starts_with("http://127.0.0.1:8014/locker/?"), "{url}");
        assert_eq!(query(&url, "list-type"), "2");
        assert_eq!(query(&url, "prefix"), "t/");
        assert_eq!(query(&url, "max-keys"), "1000");
        assert_eq!(query(&url, "continuation-token"), "tok/en==");
        assert_eq!(query(&url, "X-Amz-Expires"), "300");
        let first = bucket
            .presign_list_objects("t/", Some(""), 0, MAY_24_2013, 300)
            .unwrap();
        assert!(!first.contains("continuation-token"));
        assert_eq!(query(&first, "max-keys"), "1");
    }

    #[test]
    fn reads_a_page_and_its_token() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>locker</Name><Prefix>t/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>t/acme/sha256/ab</Key><LastModified>2026-12-02T06:30:00.250Z</LastModified>
    <ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>t/a%20b%26c/sha256/cd</Key><LastModified>2026-12-02T06:31:00Z</LastModified>
    <Size>0</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr&amp;/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = parse_list_objects(xml).unwrap();
        assert_eq!(
            page.objects,
            vec![
                ListedObject {
                    key: "t/acme/sha256/ab".into(),
                    size: 12,
                    last_modified_ms: 1_796_193_000_250,
                },
                ListedObject {
                    key: "t/a b&c/sha256/cd".into(),
                    size: 0,
                    last_modified_ms: 1_796_193_060_000,
                },
            ]
        );
        assert_eq!(
            page.next.as_deref(),
            Some("1ueGcxLPRx1Tr&/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
    }

    #[test]
    fn the_last_page_has_no_token_and_errors_are_refusals() {
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated>\
                    <Contents><Key>a+b</Key><LastModified>2026-12-02T06:30:00Z</LastModified>\
                    <Size>1</Size></Contents></ListBucketResult>";
        let page = parse_list_objects(last).unwrap();
        assert_eq!(page.next, None);
        // Not url-encoded: the key as it is.
        assert_eq!(page.objects[0].key, "a+b");
        assert_eq!(
            parse_list_objects("<ListBucketResult></ListBucketResult>").unwrap(),
            ObjectsPage::default()
        );
        assert!(matches!(
            parse_list_objects("<Error><Code>AccessDenied</Code><Message>no</Message></Error>"),
            Err(XmlError::Refused { .. })
        ));
        assert!(matches!(
            parse_list_objects(
                "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"
            ),
            Err(XmlError::Malformed("NextContinuationToken"))
        ));
        assert!(matches!(
            parse_list_objects(
                "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>"
            ),
            Err(XmlError::Missing("LastModified") | XmlError::Malformed("LastModified"))
        ));
        assert!(parse_list_objects("<html/>").is_err());
    }
}
