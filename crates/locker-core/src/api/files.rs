//! Files: `GET /v1/files/{namespace}/{path}`, `GET /v1/files?namespace=&prefix=&cursor=&limit=`,
//! `DELETE /v1/files/{namespace}/{path}` (and the gateway's `DELETE /api/files/...`).

use serde::{Deserialize, Serialize};

/// A file: an entry of [`FileList`], and with `url` and `url_expires_at` the answer to
/// `GET /v1/files/{namespace}/{path}` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// `locker://{namespace}/{path}`.
    #[serde(rename = "ref")]
    pub locker_ref: String,
    pub namespace: String,
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    /// The display name: the one given at upload, else the path's last segment (the Worker
    /// stores one for every upload); `null` only for a row stored without one.
    pub filename: Option<String>,
    /// The bucket holding the bytes.
    pub bucket_id: String,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// A signed download URL, valid five minutes; present in the answer for one file only,
    /// absent from list entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When `url` stops working, seconds since the epoch; present exactly when `url` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<u64>,
}

/// The answer to `GET /v1/files?namespace=` (200): one page, ordered by path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    pub files: Vec<FileInfo>,
    /// Pass as `cursor=` for the next page; `null` on the last page.
    pub cursor: Option<String>,
}

/// The answer to `DELETE /v1/files/{namespace}/{path}` and `DELETE /api/files/...` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// Always `true`.
    pub deleted: bool,
    #[serde(rename = "ref")]
    pub locker_ref: String,
    /// Whether the bytes went too: `false` while another file of the tenant uses them.
    pub bytes_deleted: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::api::test_support::round_trip;

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// files.rs FileRow::to_json
    fn entry(filename: Value) -> Value {
        json!({
            "ref": "locker://corp/q3/deck.pdf", "namespace": "corp", "path": "q3/deck.pdf",
            "sha256": SHA, "size": 123456, "content_type": "application/pdf",
            "filename": filename,
            "bucket_id": "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208",
            "created_at": 1_764_000_000_123u64, "updated_at": 1_764_000_000_456u64,
        })
    }

    #[test]
    fn stat_answer_carries_the_url() {
        // files.rs get: the entry plus url and url_expires_at
        let mut stat = entry(json!("Deck.pdf"));
        stat["url"] = json!("http://127.0.0.1:8787/v1/download?sig=a.b");
        stat["url_expires_at"] = json!(1_764_000_300u64);
        let f: FileInfo = round_trip(&stat);
        assert_eq!(f.url_expires_at, Some(1_764_000_300));
        assert_eq!(f.filename.as_deref(), Some("Deck.pdf"));
    }

    #[test]
    fn list_keeps_null_filename_and_null_cursor() {
        let page: FileList = round_trip(&json!({"files": [entry(json!(null))], "cursor": null}));
        assert_eq!(page.files[0].filename, None);
        assert_eq!(page.files[0].url, None);
        let more: FileList = round_trip(&json!({
            "files": [entry(json!("a.pdf")), entry(json!(null))], "cursor": "q3/deck.pdf",
        }));
        assert_eq!(more.cursor.as_deref(), Some("q3/deck.pdf"));
        round_trip::<FileList>(&json!({"files": [], "cursor": null}));
    }

    #[test]
    fn delete_answer() {
        let d: Delete = round_trip(&json!({
            "deleted": true, "ref": "locker://corp/gw/one.bin", "bytes_deleted": false,
        }));
        assert!(d.deleted && !d.bytes_deleted);
    }

    #[test]
    fn answers_tolerate_new_fields() {
        let mut newer = entry(json!(null));
        newer["etag"] = json!("x");
        let f: FileInfo = serde_json::from_value(newer).unwrap();
        assert_eq!(f.size, 123456);
    }
}
