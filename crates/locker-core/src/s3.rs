//! SigV4 query-presigned URLs for S3-compatible storage (R2, AWS S3, any path-style endpoint),
//! built on rusty-s3. Sans-IO like the rest of this crate: the caller passes the clock.
//!
//! Uploads sign `host`, `content-length`, `content-type`, `x-amz-checksum-sha256` and
//! `if-none-match: *`, so storage itself enforces the size, the type, the bytes (by digest) and
//! write-once. Downloads sign `response-content-disposition` and `response-content-type`, so the
//! bytes are served the way the Worker decided.

use std::time::Duration;

use base64::Engine as _;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::hash::Sha256Hex;

mod list;
mod multipart;
mod xml;
pub use list::{parse_list_objects, ListedObject, ObjectsPage};
pub use multipart::{
    checksum_b64, complete_body, parse_complete, parse_list_parts, parse_upload_id, CompletedPart,
    ListedPart, PartSpec, PartsPage,
};
pub use xml::XmlError;

/// Shortest and longest expiry S3 (and R2) accept for a presigned URL: 1 s to 7 days.
pub const MIN_EXPIRY_S: u64 = 1;
pub const MAX_EXPIRY_S: u64 = 7 * 24 * 3600;

/// Why a bucket or a URL could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    #[error("expiry must be {MIN_EXPIRY_S} to {MAX_EXPIRY_S} seconds, got {0}")]
    Expiry(u64),
    #[error("endpoint must be an http(s) URL with a host: {0}")]
    Endpoint(String),
    #[error("jurisdiction must be 'default', 'eu' or 'fedramp'")]
    Jurisdiction,
    #[error("account id must be 1 to 64 characters of a-z and 0-9")]
    AccountId,
    #[error("the clock is outside the range SigV4 can express")]
    Clock,
    #[error("object key cannot be put in a URL as written: {0:?}")]
    Key(String),
}

/// Refuses keys a presigned URL would not name as written. rusty-s3 appends the key to the
/// bucket's path percent-encoded, but URL parsing still resolves `.` and `..` segments: such
/// a key would sign a request for another object or another bucket, and an empty key names
/// the bucket itself (a DELETE becomes DeleteBucket); rusty-s3's docs leave this check to its
/// callers. locker's own keys never look like this; the check keeps it so for any caller.
fn object_key(key: &str) -> Result<&str, S3Error> {
    if key.is_empty() || key.split('/').any(|s| s == "." || s == "..") {
        Err(S3Error::Key(key.to_owned()))
    } else {
        Ok(key)
    }
}

/// `https://{account}.r2.cloudflarestorage.com`, or `{account}.{eu|fedramp}.r2...` for a
/// jurisdiction.
pub fn r2_endpoint(account_id: &str, jurisdiction: &str) -> Result<String, S3Error> {
    let ok = !account_id.is_empty()
        && account_id.len() <= 64
        && account_id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ok {
        return Err(S3Error::AccountId);
    }
    match jurisdiction {
        "default" | "" => Ok(format!("https://{account_id}.r2.cloudflarestorage.com")),
        "eu" | "fedramp" => Ok(format!(
            "https://{account_id}.{jurisdiction}.r2.cloudflarestorage.com"
        )),
        _ => Err(S3Error::Jurisdiction),
    }
}

/// The names of the two Worker secrets that hold an S3 bucket's credentials:
/// `LOCKER_S3_{NAME}_ACCESS_KEY_ID` and `LOCKER_S3_{NAME}_SECRET_ACCESS_KEY`, NAME the bucket
/// name upper-cased with anything but A-Z and 0-9 as `_`.
pub fn credential_secrets(bucket_name: &str) -> (String, String) {
    let name: String = bucket_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    (
        format!("LOCKER_S3_{name}_ACCESS_KEY_ID"),
        format!("LOCKER_S3_{name}_SECRET_ACCESS_KEY"),
    )
}

/// A presigned request: where to send it, and the headers that must go with it (all of them
/// signed). `content-length` is signed too but not listed: every HTTP client sets it from the
/// body, and a browser refuses to let a page set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What a presigned upload binds.
#[derive(Debug, Clone)]
pub struct PutSpec<'a> {
    pub key: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub sha256: &'a Sha256Hex,
}

/// The SHA-256 an `x-amz-checksum-sha256` answer header reports for a whole object: exactly
/// 32 bytes in standard base64. `None` for anything else, such as the checksum of an object in
/// parts (`{base64}-{parts}`, a digest of its parts' digests, not of its bytes).
pub fn reported_sha256(header: &str) -> Option<Sha256Hex> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    Some(Sha256Hex::from_bytes(bytes.try_into().ok()?))
}

/// An S3 bucket and the credentials that sign for it.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    bucket: Bucket,
    credentials: Credentials,
}

fn expiry(seconds: u64) -> Result<Duration, S3Error> {
    if (MIN_EXPIRY_S..=MAX_EXPIRY_S).contains(&seconds) {
        Ok(Duration::from_secs(seconds))
    } else {
        Err(S3Error::Expiry(seconds))
    }
}

fn timestamp(now_s: u64) -> Result<jiff::Timestamp, S3Error> {
    let s = i64::try_from(now_s).map_err(|_| S3Error::Clock)?;
    jiff::Timestamp::from_second(s).map_err(|_| S3Error::Clock)
}

/// Signs `action` with `headers` (which the request must then carry, each one signed), for
/// `expires_s` seconds from `now_s`: what every presigned request with headers returns.
fn presigned<'a, A: S3Action<'a>>(
    mut action: A,
    headers: Vec<(String, String)>,
    now_s: u64,
    expires_s: u64,
) -> Result<Presigned, S3Error> {
    for (name, value) in &headers {
        action.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(Presigned {
        method: A::METHOD.to_str(),
        url: signed(&action, now_s, expires_s)?,
        headers,
    })
}

/// The URL of `action` signed for `expires_s` seconds from `now_s`.
fn signed<'a, A: S3Action<'a>>(action: &A, now_s: u64, expires_s: u64) -> Result<String, S3Error> {
    Ok(action
        .sign_with_time(expiry(expires_s)?, &timestamp(now_s)?)
        .into())
}

impl S3Bucket {
    /// A bucket at `endpoint`. `path_style`: `https://host/bucket/key` (any S3-compatible server,
    /// and R2) rather than `https://bucket.host/key` (AWS's preferred style).
    pub fn new(
        endpoint: &str,
        name: &str,
        region: &str,
        path_style: bool,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, S3Error> {
        let url = endpoint
            .parse()
            .map_err(|_| S3Error::Endpoint(endpoint.to_owned()))?;
        let style = if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(url, style, name.to_owned(), region.to_owned())
            .map_err(|_| S3Error::Endpoint(endpoint.to_owned()))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(access_key_id, secret_access_key),
        })
    }

    /// An R2 bucket through its S3 API: region `auto`, path style.
    pub fn r2(
        account_id: &str,
        jurisdiction: &str,
        name: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, S3Error> {
        let endpoint = r2_endpoint(account_id, jurisdiction)?;
        Self::new(
            &endpoint,
            name,
            "auto",
            true,
            access_key_id,
            secret_access_key,
        )
    }

    /// A write-once upload of exactly these bytes.
    pub fn presign_put(
        &self,
        spec: &PutSpec<'_>,
        now_s: u64,
        expires_s: u64,
    ) -> Result<Presigned, S3Error> {
        let checksum = base64::engine::general_purpose::STANDARD.encode(spec.sha256.as_bytes());
        let headers = vec![
            ("content-type".to_owned(), spec.content_type.to_owned()),
            ("if-none-match".to_owned(), "*".to_owned()),
            ("x-amz-checksum-sha256".to_owned(), checksum),
        ];
        let mut action = self
            .bucket
            .put_object(Some(&self.credentials), object_key(spec.key)?);
        action
            .headers_mut()
            .insert("content-length", spec.size.to_string());
        presigned(action, headers, now_s, expires_s)
    }

    /// A download, served with the given `Content-Disposition` and `Content-Type`.
    pub fn presign_get(
        &self,
        key: &str,
        now_s: u64,
        expires_s: u64,
        content_disposition: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<String, S3Error> {
        let mut action = self
            .bucket
            .get_object(Some(&self.credentials), object_key(key)?);
        if let Some(d) = content_disposition {
            action
                .query_mut()
                .insert("response-content-disposition", d.to_owned());
        }
        if let Some(t) = content_type {
            action
                .query_mut()
                .insert("response-content-type", t.to_owned());
        }
        signed(&action, now_s, expires_s)
    }

    /// A `HEAD` of the object, for the Worker's own checks.
    pub fn presign_head(&self, key: &str, now_s: u64, expires_s: u64) -> Result<String, S3Error> {
        let action = self
            .bucket
            .head_object(Some(&self.credentials), object_key(key)?);
        signed(&action, now_s, expires_s)
    }

    /// A `HEAD` of the object that asks for its checksums (`x-amz-checksum-mode: ENABLED`,
    /// signed, so the request must carry it): AWS S3 reports `x-amz-checksum-sha256` only
    /// when asked. The answer's value is read with [`reported_sha256`].
    pub fn presign_head_checksum(
        &self,
        key: &str,
        now_s: u64,
        expires_s: u64,
    ) -> Result<Presigned, S3Error> {
        let action = self
            .bucket
            .head_object(Some(&self.credentials), object_key(key)?);
        let headers = vec![("x-amz-checksum-mode".to_owned(), "ENABLED".to_owned())];
        presigned(action, headers, now_s, expires_s)
    }

    /// A `DELETE` of the object, for the Worker's own clean-up.
    pub fn presign_delete(&self, key: &str, now_s: u64, expires_s: u64) -> Result<String, S3Error> {
        let action = self
            .bucket
            .delete_object(Some(&self.credentials), object_key(key)?);
        signed(&action, now_s, expires_s)
    }
}

#[cfg(test)]
pub(super) mod tests;
