//! S3 multipart uploads, sans-IO: the presigned requests (the Worker sends create, complete,
//! abort and list itself; the client sends the parts) and the XML of their answers.
//!
//! Integrity: the upload is created with `x-amz-checksum-algorithm: SHA256`, every part URL
//! signs its `content-length` and `x-amz-checksum-sha256`, and complete names each part's
//! checksum, so a server that checks checksums (AWS, R2) refuses other bytes for a part. Not
//! every server does (s3s-fs ignores part checksums), which is why the Worker checks the whole
//! object's digest after completing, as for a single PUT.
//!
//! The answers are read by plain string search, like [`crate::client::s3_error`]: the few
//! elements needed are flat and never nested in themselves, and an XML library would be paid
//! for in the browser module's weight (this crate is shared).

use base64::Engine as _;
use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, ListParts, UploadPart,
};
use rusty_s3::S3Action as _;

use super::xml::{element, escape, next_element, refused, unescape, XmlError};
use super::{object_key, presigned, signed, Presigned, S3Bucket, S3Error};
use crate::Sha256Hex;

/// The base64 form of a digest, as `x-amz-checksum-sha256` and `<ChecksumSHA256>` carry it.
pub fn checksum_b64(sha256: &Sha256Hex) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha256.as_bytes())
}

/// What a presigned part upload binds.
#[derive(Debug, Clone)]
pub struct PartSpec<'a> {
    pub key: &'a str,
    pub upload_id: &'a str,
    /// 1 to 10,000.
    pub number: u16,
    pub size: u64,
    pub sha256: &'a Sha256Hex,
}

/// One part named in a CompleteMultipartUpload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub number: u32,
    /// As storage gave it, quotes included; `None` when storage did not list one (s3s-fs's
    /// ListParts omits it, and ignores ETags on complete).
    pub etag: Option<String>,
    pub sha256: Sha256Hex,
}

/// A part as ListParts names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub size: u64,
    pub etag: Option<String>,
    /// The checksum storage kept for the part, when it reports one.
    pub sha256: Option<Sha256Hex>,
}

/// One page of ListParts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartsPage {
    pub parts: Vec<ListedPart>,
    /// Where the next page starts, when this one is truncated.
    pub next_marker: Option<u32>,
}

impl S3Bucket {
    /// CreateMultipartUpload (`POST /{key}?uploads`), sent by the Worker: the object's type and
    /// SHA-256 part checksums.
    pub fn presign_create_multipart(
        &self,
        key: &str,
        content_type: &str,
        now_s: u64,
        expires_s: u64,
    ) -> Result<Presigned, S3Error> {
        let headers = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("x-amz-checksum-algorithm".to_owned(), "SHA256".to_owned()),
        ];
        let action =
            CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), object_key(key)?);
        presigned(action, headers, now_s, expires_s)
    }

    /// UploadPart (`PUT /{key}?partNumber=&uploadId=`), sent by the client: exactly this many
    /// bytes with this SHA-256.
    pub fn presign_upload_part(
        &self,
        part: &PartSpec<'_>,
        now_s: u64,
        expires_s: u64,
    ) -> Result<Presigned, S3Error> {
        let headers = vec![(
            "x-amz-checksum-sha256".to_owned(),
            checksum_b64(part.sha256),
        )];
        let mut action = UploadPart::new(
            &self.bucket,
            Some(&self.credentials),
            object_key(part.key)?,
            part.number,
            part.upload_id,
        );
        action
            .headers_mut()
            .insert("content-length", part.size.to_string());
        presigned(action, headers, now_s, expires_s)
    }

    /// CompleteMultipartUpload (`POST /{key}?uploadId=`), sent by the Worker with
    /// [`complete_body`]; write-once (`if-none-match: *`), like a single PUT, so completing can
    /// never replace an object already at the key.
    pub fn presign_complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        now_s: u64,
        expires_s: u64,
    ) -> Result<Presigned, S3Error> {
        let headers = vec![("if-none-match".to_owned(), "*".to_owned())];
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            object_key(key)?,
            upload_id,
            std::iter::empty(),
        );
        presigned(action, headers, now_s, expires_s)
    }

    /// AbortMultipartUpload (`DELETE /{key}?uploadId=`): storage drops the parts.
    pub fn presign_abort_multipart(
        &self,
        key: &str,
        upload_id: &str,
        now_s: u64,
        expires_s: u64,
    ) -> Result<String, S3Error> {
        let action = AbortMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            object_key(key)?,
            upload_id,
        );
        signed(&action, now_s, expires_s)
    }

    /// ListParts (`GET /{key}?uploadId=`), from after part `marker`, up to 1,000 parts.
    pub fn presign_list_parts(
        &self,
        key: &str,
        upload_id: &str,
        marker: Option<u16>,
        now_s: u64,
        expires_s: u64,
    ) -> Result<String, S3Error> {
        let mut action = ListParts::new(
            &self.bucket,
            Some(&self.credentials),
            object_key(key)?,
            upload_id,
        );
        action.set_max_parts(1000);
        if let Some(m) = marker {
            action.set_part_number_marker(m);
        }
        signed(&action, now_s, expires_s)
    }
}

/// The body of CompleteMultipartUpload: the parts in order, each with its checksum (required by
/// storage for an upload created with a checksum algorithm) and its ETag where known.
pub fn complete_body(parts: &[CompletedPart]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for p in parts {
        body.push_str("<Part>");
        body.push_str(&format!("<PartNumber>{}</PartNumber>", p.number));
        if let Some(etag) = &p.etag {
            body.push_str(&format!("<ETag>{}</ETag>", escape(etag)));
        }
        body.push_str(&format!(
            "<ChecksumSHA256>{}</ChecksumSHA256>",
            checksum_b64(&p.sha256)
        ));
        body.push_str("</Part>");
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// The `UploadId` of a CreateMultipartUpload answer.
pub fn parse_upload_id(xml: &str) -> Result<String, XmlError> {
    refused(xml)?;
    let id = element(xml, "UploadId").ok_or(XmlError::Missing("UploadId"))?;
    let id = unescape(id.trim());
    // It goes into query strings and D1 as given; an empty or odd one is not an upload.
    if id.is_empty() || id.len() > 1024 || id.chars().any(char::is_control) {
        return Err(XmlError::Malformed("UploadId"));
    }
    Ok(id)
}

/// A page of a ListParts answer.
pub fn parse_list_parts(xml: &str) -> Result<PartsPage, XmlError> {
    refused(xml)?;
    if element(xml, "ListPartsResult").is_none() {
        return Err(XmlError::Missing("ListPartsResult"));
    }
    let mut parts = Vec::new();
    let mut rest = xml;
    while let Some((inner, after)) = next_element(rest, "Part") {
        let number = element(inner, "PartNumber")
            .and_then(|n| n.trim().parse().ok())
            .ok_or(XmlError::Malformed("Part"))?;
        let size = element(inner, "Size")
            .and_then(|n| n.trim().parse().ok())
            .ok_or(XmlError::Malformed("Part"))?;
        let etag = element(inner, "ETag").map(|e| unescape(e.trim()));
        let sha256 = match element(inner, "ChecksumSHA256") {
            None => None,
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .map(Sha256Hex::from_bytes)
                    .ok_or(XmlError::Malformed("ChecksumSHA256"))?,
            ),
        };
        parts.push(ListedPart {
            number,
            size,
            etag,
            sha256,
        });
        rest = after;
    }
    let truncated = element(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next_marker = if truncated {
        let m = element(xml, "NextPartNumberMarker")
            .and_then(|m| m.trim().parse::<u32>().ok())
            .filter(|&m| m > 0)
            .ok_or(XmlError::Malformed("NextPartNumberMarker"))?;
        Some(m)
    } else {
        None
    };
    Ok(PartsPage { parts, next_marker })
}

/// Whether a CompleteMultipartUpload answer (which S3 may send as `200 OK` before it knows the
/// outcome) says the object was made: a `CompleteMultipartUploadResult`, not an `Error`.
pub fn parse_complete(xml: &str) -> Result<(), XmlError> {
    refused(xml)?;
    element(xml, "CompleteMultipartUploadResult")
        .map(|_| ())
        .ok_or(XmlError::Missing("CompleteMultipartUploadResult"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{query, reference_signature, split, KEY, MAY_24_2013, SECRET};
    use super::*;

    fn local() -> S3Bucket {
        S3Bucket::new(
            "http://127.0.0.1:8014",
            "blobs",
            "us-east-1",
            true,
            KEY,
            SECRET,
        )
        .unwrap()
    }

    /// The reference signer agrees with the URL's signature for `method` with `headers`.
    fn assert_signed(method: &str, url: &str, headers: &[(&str, &str)]) {
        let (host, path, pairs) = split(url);
        let expected = reference_signature(
            method,
            &host,
            &path,
            &pairs,
            headers,
            "20130524T000000Z",
            "us-east-1",
        );
        assert_eq!(expected, query(url, "X-Amz-Signature"), "{url}");
    }

    #[test]
    fn create_signs_type_and_checksum_algorithm() {
        let p = local()
            .presign_create_multipart("t/acme/sha256/abc", "video/mp4", MAY_24_2013, 60)
            .unwrap();
        assert_eq!(p.method, "POST");
        assert!(p
            .url
            .starts_with("http://127.0.0.1:8014/blobs/t/acme/sha256/abc?"));
        assert!(split(&p.url).2.iter().any(|(k, _)| k == "uploads"));
        assert_eq!(
            query(&p.url, "X-Amz-SignedHeaders"),
            "content-type;host;x-amz-checksum-algorithm"
        );
        assert_signed(
            "POST",
            &p.url,
            &[
                ("content-type", "video/mp4"),
                ("x-amz-checksum-algorithm", "SHA256"),
            ],
        );
    }

    #[test]
    fn a_part_url_signs_its_length_and_digest() {
        let sha = Sha256Hex::digest(b"hello");
        let spec = PartSpec {
            key: "t/acme/sha256/abc",
            upload_id: "u-1",
            number: 3,
            size: 5,
            sha256: &sha,
        };
        let p = local()
            .presign_upload_part(&spec, MAY_24_2013, 600)
            .unwrap();
        assert_eq!(p.method, "PUT");
        assert_eq!(query(&p.url, "partNumber"), "3");
        assert_eq!(query(&p.url, "uploadId"), "u-1");
        assert_eq!(
            query(&p.url, "X-Amz-SignedHeaders"),
            "content-length;host;x-amz-checksum-sha256"
        );
        let checksum = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
        assert_eq!(
            p.headers,
            vec![("x-amz-checksum-sha256".to_owned(), checksum.to_owned())]
        );
        assert_signed(
            "PUT",
            &p.url,
            &[("content-length", "5"), ("x-amz-checksum-sha256", checksum)],
        );
        // Another length, digest or number is another signature.
        let sig = query(&p.url, "X-Amz-Signature");
        let other = Sha256Hex::digest(b"hellO");
        for changed in [
            PartSpec {
                size: 6,
                ..spec.clone()
            },
            PartSpec {
                sha256: &other,
                ..spec.clone()
            },
            PartSpec {
                number: 4,
                ..spec.clone()
            },
        ] {
            let url = local()
                .presign_upload_part(&changed, MAY_24_2013, 600)
                .unwrap()
                .url;
            assert_ne!(query(&url, "X-Amz-Signature"), sig);
        }
    }

    #[test]
    fn complete_abort_and_list_are_signed_requests_of_the_upload() {
        let b = local();
        let c = b
            .presign_complete_multipart("t/a/sha256/x", "u 1", MAY_24_2013, 60)
            .unwrap();
        assert_eq!(
            (c.method, query(&c.url, "uploadId")),
            ("POST", "u 1".to_owned())
        );
        assert_signed("POST", &c.url, &[("if-none-match", "*")]);
        let a = b
            .presign_abort_multipart("t/a/sha256/x", "u 1", MAY_24_2013, 60)
            .unwrap();
        assert_eq!(query(&a, "uploadId"), "u 1");
        assert_signed("DELETE", &a, &[]);
        let l = b
            .presign_list_parts("t/a/sha256/x", "u 1", Some(1000), MAY_24_2013, 60)
            .unwrap();
        assert_eq!(query(&l, "part-number-marker"), "1000");
        assert_eq!(query(&l, "max-parts"), "1000");
        assert_signed("GET", &l, &[]);
        assert!(b
            .presign_abort_multipart("../x", "u", MAY_24_2013, 60)
            .is_err());
        assert!(b
            .presign_list_parts("t/a", "u", None, MAY_24_2013, 0)
            .is_err());
    }

    #[test]
    fn complete_body_lists_parts_in_order_with_checksums() {
        let sha = Sha256Hex::digest(b"hello");
        let body = complete_body(&[
            CompletedPart {
                number: 1,
                etag: Some("\"a&b\"".into()),
                sha256: sha,
            },
            CompletedPart {
                number: 2,
                etag: None,
                sha256: sha,
            },
        ]);
        assert_eq!(
            body,
            "<CompleteMultipartUpload>\
             <Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag>\
             <ChecksumSHA256>LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=</ChecksumSHA256></Part>\
             <Part><PartNumber>2</PartNumber>\
             <ChecksumSHA256>LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=</ChecksumSHA256></Part>\
             </CompleteMultipartUpload>"
        );
    }

    /// The example answers of the S3 API reference (CreateMultipartUpload, ListParts), and what
    /// s3s-fs 0.14 answers (no ETag in ListParts).
    #[test]
    fn answers_as_servers_write_them() {
        let create = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>"#;
        assert_eq!(
            parse_upload_id(create).unwrap(),
            "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
        );
        let list = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA</UploadId>
  <PartNumberMarker>1</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>2</PartNumber>
    <LastModified>2010-11-10T20:48:34.000Z</LastModified>
    <ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag>
    <Size>10485760</Size>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <LastModified>2010-11-10T20:48:33.000Z</LastModified>
    <ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag>
    <Size>10485760</Size>
    <ChecksumSHA256>LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=</ChecksumSHA256>
  </Part>
</ListPartsResult>"#;
        let page = parse_list_parts(list).unwrap();
        assert_eq!(page.next_marker, Some(3));
        assert_eq!(
            page.parts,
            vec![
                ListedPart {
                    number: 2,
                    size: 10_485_760,
                    etag: Some("\"7778aef83f66abc1fa1e8477f296d394\"".into()),
                    sha256: None,
                },
                ListedPart {
                    number: 3,
                    size: 10_485_760,
                    etag: Some("\"aaaa18db4cc2f85cedef654fccc4a4x8\"".into()),
                    sha256: Some(Sha256Hex::digest(b"hello")),
                },
            ]
        );
        let s3s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult><Bucket>b</Bucket>\
                   <Key>k</Key><UploadId>u</UploadId><Part><LastModified>2026-12-02T03:00:00Z\
                   </LastModified><PartNumber>1</PartNumber><Size>5</Size></Part></ListPartsResult>";
        let page = parse_list_parts(s3s).unwrap();
        assert_eq!(page.next_marker, None);
        assert_eq!(page.parts.len(), 1);
        assert_eq!(
            (page.parts[0].number, page.parts[0].etag.clone()),
            (1, None)
        );
        let empty =
            parse_list_parts("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>");
        assert_eq!(empty, Ok(PartsPage::default()));
    }

    #[test]
    fn refusals_and_malformed_answers() {
        let error = "<?xml version=\"1.0\"?><Error><Code>NoSuchUpload</Code>\
                     <Message>The specified upload does not exist.</Message></Error>";
        for result in [
            parse_list_parts(error).map(|_| ()),
            parse_upload_id(error).map(|_| ()),
            parse_complete(error),
        ] {
            assert_eq!(
                result,
                Err(XmlError::Refused {
                    code: "NoSuchUpload".into(),
                    message: "The specified upload does not exist.".into()
                })
            );
        }
        // S3 may answer complete with 200 and then an error in the body.
        assert!(parse_complete(
            "<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>"
        )
        .is_ok());
        assert_eq!(
            parse_complete(""),
            Err(XmlError::Missing("CompleteMultipartUploadResult"))
        );
        assert_eq!(parse_upload_id("<X/>"), Err(XmlError::Missing("UploadId")));
        assert_eq!(
            parse_upload_id("<UploadId>  </UploadId>"),
            Err(XmlError::Malformed("UploadId"))
        );
        assert_eq!(
            parse_list_parts(
                "<ListPartsResult><Part><PartNumber>x</PartNumber></Part></ListPartsResult>"
            ),
            Err(XmlError::Malformed("Part"))
        );
        assert_eq!(
            parse_list_parts("<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>"),
            Err(XmlError::Malformed("NextPartNumberMarker"))
        );
        assert_eq!(
            parse_list_parts(
                "<ListPartsResult><Part><PartNumber>1</PartNumber><Size>1</Size>\
                 <ChecksumSHA256>AAAA</ChecksumSHA256></Part></ListPartsResult>"
            ),
            Err(XmlError::Malformed("ChecksumSHA256"))
        );
        assert_eq!(
            parse_list_parts("<html>"),
            Err(XmlError::Missing("ListPartsResult"))
        );
    }
}
