//! The original gateway API: `PUT /api/files/{namespace}/{path}` and `POST /api/signed-url`.
//! (`GET /api/files/...` answers the bytes themselves; `DELETE` answers [`crate::api::Delete`].)

use serde::{Deserialize, Serialize};

/// The answer to `PUT /api/files/{namespace}/{path}`. Its shape tells the two apart (no
/// `status` field in this older API): a dedup hit carries `deduplicated` and `existing_ref`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GatewayPut {
    /// Listed first: [`GatewayStored`] alone would not tell these apart.
    Deduplicated(GatewayDeduplicated),
    Stored(GatewayStored),
}

impl GatewayPut {
    /// The HTTP status the Worker answers this with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Deduplicated(_) => 200,
            Self::Stored(_) => 201,
        }
    }
}

/// The bytes were stored now (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayStored {
    #[serde(rename = "ref")]
    pub locker_ref: String,
    /// A signed download URL, valid five minutes.
    pub url: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// The tenant already stored these bytes (200): nothing was written to storage, the file row
/// points at them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayDeduplicated {
    /// Always `true`.
    pub deduplicated: bool,
    /// A file that already held these bytes (this one's ref when it held them itself).
    pub existing_ref: String,
    #[serde(rename = "ref")]
    pub locker_ref: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// `POST /api/signed-url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedUrlRequest {
    /// `namespace/path` or `locker://namespace/path`.
    pub path: String,
    /// Seconds, 1 to 604800 (7 days); default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// The answer to `POST /api/signed-url` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUrl {
    pub url: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
    /// The lifetime granted, seconds.
    pub expires_in: u64,
    #[serde(rename = "ref")]
    pub locker_ref: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn put_answers_are_told_apart_by_shape() {
        // gateway.rs put, after storing
        let stored: GatewayPut = round_trip(&json!({
            "ref": "locker://corp/gw/one.bin", "url": "http://127.0.0.1:8787/v1/download?sig=a.b",
            "sha256": SHA, "size_bytes": 11,
        }));
        assert_eq!(stored.http_status(), 201);
        assert!(matches!(stored, GatewayPut::Stored(_)));
        // gateway.rs put, on a dedup hit
        let dedup: GatewayPut = round_trip(&json!({
            "deduplicated": true, "existing_ref": "locker://corp/gw/one.bin",
            "ref": "locker://corp/gw/two.bin", "sha256": SHA, "size_bytes": 11,
        }));
        assert_eq!(dedup.http_status(), 200);
        let GatewayPut::Deduplicated(d) = dedup else {
            panic!("not a dedup: {dedup:?}");
        };
        assert_eq!(d.existing_ref, "locker://corp/gw/one.bin");
        refused::<GatewayPut>(&json!({"ref": "locker://corp/a", "sha256": SHA}), "");
    }

    #[test]
    fn signed_url() {
        let r: SignedUrlRequest = round_trip(&json!({"path": "corp/gw/one.bin"}));
        assert_eq!(r.expires_in, None);
        round_trip::<SignedUrlRequest>(
            &json!({"path": "locker://corp/gw/one.bin", "expires_in": 60}),
        );
        refused::<SignedUrlRequest>(&json!({"path": "corp/a", "ttl": 60}), "ttl");
        // gateway.rs signed_url
        let answer: SignedUrl = round_trip(&json!({
            "url": "http://127.0.0.1:8787/v1/download?sig=a.b", "expires_at": 1_764_003_600u64,
            "expires_in": 3600, "ref": "locker://corp/gw/one.bin",
        }));
        assert_eq!(answer.expires_in, 3600);
    }
}
