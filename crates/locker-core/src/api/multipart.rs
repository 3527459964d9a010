//! Uploads in parts: the plan in the reserve answer, `POST /v1/uploads/{id}/parts` (signed part
//! URLs for declared part digests), `PUT /v1/data/{id}/parts/{number}?sig=` (the Worker's data
//! plane for one part) and `GET /v1/uploads/{id}` (a reservation and its stored parts, for
//! resuming). Completing and aborting are the same routes as for one-request uploads.
//!
//! How parts are cut is [`crate::multipart`]: the client computes the same part size before it
//! reserves, so it can hash each part while it hashes the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Transport, UploadState};

/// The fields of [`super::Reserved::Multipart`]: an upload in `part_count` parts of
/// `part_size` bytes (the last one shorter or equal), parts numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartPlan {
    /// `up_...`, for the parts, complete and abort.
    pub upload_id: String,
    /// Where the parts go: `worker` (through the Worker's data plane into R2) or `s3` (straight
    /// to storage with presigned URLs).
    pub transport: Transport,
    /// Bytes of every part but the last; always [`crate::multipart::part_size`] of the size.
    pub part_size: u64,
    pub part_count: u32,
    /// The absolute URL of `POST /v1/uploads/{id}/parts`, which answers the parts' signed URLs.
    pub parts_url: String,
    /// At most this many parts per `parts_url` request
    /// ([`crate::multipart::MAX_PARTS_PER_REQUEST`]).
    pub max_parts_per_request: u32,
    /// When the reservation's URLs stop being signed, seconds since the epoch (the upload can
    /// still be completed for the Worker's grace period after it).
    pub expires_at: u64,
    /// The file's ref once completed.
    #[serde(rename = "ref")]
    pub locker_ref: String,
}

/// One part whose URL is asked for, with the SHA-256 of its bytes (the Worker and storage
/// refuse other bytes for it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartDigest {
    /// 1 to the plan's `part_count`.
    pub number: u32,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

/// `POST /v1/uploads/{id}/parts`: signed URLs for these parts (1 to `max_parts_per_request`
/// of them, each number once). Asking again for a part gives a fresh URL; a different digest
/// for a part replaces the declared one until the part is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartsRequest {
    pub parts: Vec<PartDigest>,
}

/// One signed part upload in [`PartUrls`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartUrl {
    pub number: u32,
    /// The exact length the request body must have.
    pub size: u64,
    /// `"PUT"`.
    pub method: String,
    /// The Worker's `/v1/data/{id}/parts/{number}?sig=` (transport `worker`) or a presigned S3
    /// UploadPart URL (`s3`).
    pub url: String,
    /// Headers the request must carry, all of them signed (`content-length` too, not listed).
    /// For `s3`: `x-amz-checksum-sha256`, the part's digest in base64.
    pub headers: BTreeMap<String, String>,
    /// When `url` stops working, seconds since the epoch.
    pub expires_at: u64,
}

/// The answer to `POST /v1/uploads/{id}/parts` (200), in the order asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartUrls {
    pub upload_id: String,
    pub parts: Vec<PartUrl>,
}

/// The answer to `PUT /v1/data/{id}/parts/{number}?sig=`, told apart by its `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PartPut {
    /// `"stored"` (201): the part's bytes matched its length and digest and are stored now.
    Stored {
        number: u32,
        size: u64,
        sha256: String,
    },
    /// `"exists"` (200): this part was stored already with this digest; nothing was written.
    Exists {
        number: u32,
        size: u64,
        sha256: String,
    },
}

impl PartPut {
    /// The HTTP status the Worker answers this with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Stored { .. } => 201,
            Self::Exists { .. } => 200,
        }
    }
}

/// A part that storage holds, in [`MultipartInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    /// The digest the part was declared and checked with.
    pub sha256: String,
}

/// The multipart side of [`UploadInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartInfo {
    pub transport: Transport,
    pub part_size: u64,
    pub part_count: u32,
    /// The parts stored so far, by number; a part is listed only when storage holds it with
    /// the plan's length and the digest declared for it. Empty once the upload is no longer
    /// `pending` (its parts are then combined or deleted).
    pub parts: Vec<StoredPart>,
}

/// The answer to `GET /v1/uploads/{id}` (200): a reservation as it stands. A client resuming
/// after a reload asks this, sends only the parts not listed, and reserves again when the
/// state is not `pending` (an expired or aborted reservation starts afresh).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    pub upload_id: String,
    pub state: UploadState,
    #[serde(rename = "ref")]
    pub locker_ref: String,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    /// When the reservation's URLs stop being signed, seconds since the epoch.
    pub expires_at: u64,
    /// `null` for an upload in one request.
    pub multipart: Option<MultipartInfo>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};
    use crate::api::{ReserveRequest, Reserved};

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn reserve_answer_with_a_multipart_plan() {
        let body = json!({
            "status": "multipart", "upload_id": "up_0123abcd", "transport": "worker",
            "part_size": 8_388_608u64, "part_count": 38,
            "parts_url": "http://127.0.0.1:8787/v1/uploads/up_0123abcd/parts",
            "max_parts_per_request": 100,
            "expires_at": 1_764_000_000u64, "ref": "locker://corp/big.bin",
        });
        let answer: Reserved = round_trip(&body);
        assert_eq!(answer.http_status(), 201);
        let Reserved::Multipart(plan) = answer else {
            panic!("not multipart: {answer:?}");
        };
        assert_eq!((plan.part_count, plan.transport), (38, Transport::Worker));
        let mut s3 = body;
        s3["transport"] = json!("s3");
        round_trip::<Reserved>(&s3);
        s3["transport"] = json!("ftp");
        refused::<Reserved>(&s3, "ftp");
    }

    #[test]
    fn reserve_request_asks_for_parts() {
        let r: ReserveRequest = round_trip(&json!({
            "namespace": "corp", "path": "a", "sha256": SHA, "size": 1,
            "content_type": "text/plain", "multipart": false,
        }));
        assert_eq!(r.multipart, Some(false));
        refused::<ReserveRequest>(
            &json!({
                "namespace": "corp", "path": "a", "sha256": SHA, "size": 1,
                "content_type": "text/plain", "multipart": "yes",
            }),
            "",
        );
    }

    #[test]
    fn parts_request_and_answer() {
        let req: PartsRequest = round_trip(&json!({
            "parts": [{"number": 1, "sha256": SHA}, {"number": 2, "sha256": SHA}],
        }));
        assert_eq!(req.parts[1].number, 2);
        refused::<PartsRequest>(&json!({"parts": [{"number": 1}]}), "sha256");
        refused::<PartsRequest>(
            &json!({"parts": [{"number": 1, "sha256": SHA, "etag": "x"}]}),
            "etag",
        );
        refused::<PartsRequest>(&json!({"parts": [{"number": -1, "sha256": SHA}]}), "");
        refused::<PartsRequest>(&json!({"part": []}), "part");

        let answer: PartUrls = round_trip(&json!({
            "upload_id": "up_1",
            "parts": [
                {"number": 1, "size": 8_388_608u64, "method": "PUT",
                 "url": "http://127.0.0.1:8787/v1/data/up_1/parts/1?sig=abc.def",
                 "headers": {}, "expires_at": 1_764_000_000u64},
                {"number": 2, "size": 5, "method": "PUT",
                 "url": "http://127.0.0.1:9000/b/t/acme/sha256/x?partNumber=2&uploadId=u&X-Amz-Signature=0",
                 "headers": {"x-amz-checksum-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
                 "expires_at": 1_764_000_000u64},
            ],
        }));
        assert_eq!(answer.parts[1].size, 5);
    }

    #[test]
    fn part_put_answers() {
        let stored: PartPut = round_trip(&json!({
            "status": "stored", "number": 3, "size": 1, "sha256": SHA,
        }));
        assert_eq!(stored.http_status(), 201);
        let exists: PartPut = round_trip(&json!({
            "status": "exists", "number": 3, "size": 1, "sha256": SHA,
        }));
        assert_eq!(exists.http_status(), 200);
    }

    #[test]
    fn upload_info_with_and_without_parts() {
        let info: UploadInfo = round_trip(&json!({
            "upload_id": "up_1", "state": "pending", "ref": "locker://corp/big.bin",
            "sha256": SHA, "size": 16_777_217u64, "content_type": "application/octet-stream",
            "expires_at": 1_764_000_000u64,
            "multipart": {
                "transport": "s3", "part_size": 8_388_608u64, "part_count": 3,
                "parts": [{"number": 1, "size": 8_388_608u64, "sha256": SHA},
                          {"number": 3, "size": 1, "sha256": SHA}],
            },
        }));
        let parts = info.multipart.map(|m| m.parts.len());
        assert_eq!(parts, Some(2));
        let single: UploadInfo = round_trip(&json!({
            "upload_id": "up_2", "state": "expired", "ref": "locker://corp/a",
            "sha256": SHA, "size": 0, "content_type": "text/plain",
            "expires_at": 1_764_000_000u64, "multipart": null,
        }));
        assert_eq!(single.state, UploadState::Expired);
    }
}
