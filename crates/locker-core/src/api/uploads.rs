//! The upload flow: `POST /v1/uploads`, `PUT /v1/data/{id}`, `POST /v1/uploads/{id}/complete`,
//! `DELETE /v1/uploads/{id}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ErrorDetail, MultipartPlan};

/// `POST /v1/uploads`: reserve an upload of these bytes at `namespace/path`, or learn they are
/// stored already.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub namespace: String,
    pub path: String,
    /// 64 lowercase hex digits.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    pub content_type: String,
    /// Display name for downloads; default: the path's last segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Lifetime of the signed upload URL, seconds: 1 to 3600, default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// `true`: upload in parts whatever the size (any size above 0); `false`: in one request
    /// (refused with 413 above the transport's single-request limit); unset: the Worker plans,
    /// in parts from its threshold on (`LOCKER_MULTIPART_THRESHOLD`, default
    /// [`crate::multipart::DEFAULT_THRESHOLD`]), except into an `s3` bucket with
    /// `verify: checksum`, where every file one request carries (5 GB) is one request
    /// ([`crate::multipart::planned_threshold`]); a client leaving it unset follows either
    /// plan. An empty file is always one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<bool>,
}

/// The answer to `POST /v1/uploads`, told apart by its `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Reserved {
    /// `"deduplicated"` (200): the tenant already stored these bytes; the file row is written
    /// and nothing is to be uploaded.
    Deduplicated(Deduplicated),
    /// `"upload"` (201): a reservation; send the bytes as it says, then complete it.
    Upload(UploadPlan),
    /// `"multipart"` (201): a reservation of an upload in parts; ask the parts' URLs, send each
    /// part, then complete it.
    Multipart(MultipartPlan),
}

impl Reserved {
    /// The HTTP status the Worker answers this with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Deduplicated(_) => 200,
            Self::Upload(_) | Self::Multipart(_) => 201,
        }
    }
}

/// The most reservations one `POST /v1/uploads:batch` takes.
pub const BATCH_MAX: usize = 100;

/// `POST /v1/uploads:batch`: up to [`BATCH_MAX`] reservations in one request, each the body
/// of a `POST /v1/uploads`. An item the Worker cannot read as a [`ReserveRequest`] is refused
/// alone (`invalid_json`), not the whole batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBatch {
    pub uploads: Vec<ReserveRequest>,
}

/// The answer to `POST /v1/uploads:batch` (200): one result per item, in the items' order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedBatch {
    pub results: Vec<BatchResult>,
}

/// One item's result: what `POST /v1/uploads` would have answered with this body alone, the
/// reservation (or dedup), or the refusal with that route's status and error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Reserved(Reserved),
    Refused(BatchRefusal),
}

/// A refused item of a batch: the error body the single route would send, and its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRefusal {
    /// The HTTP status `POST /v1/uploads` answers this refusal with (400, 403, 413, 500, ...).
    pub http_status: u16,
    pub error: ErrorDetail,
}

/// The fields of [`Reserved::Deduplicated`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deduplicated {
    /// Always `true`.
    pub deduplicated: bool,
    /// `locker://{namespace}/{path}` of the file just written.
    #[serde(rename = "ref")]
    pub locker_ref: String,
    pub sha256: String,
    pub size: u64,
}

/// The fields of [`Reserved::Upload`]: one request that stores the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadPlan {
    /// `up_...`, for complete and abort.
    pub upload_id: String,
    /// `"PUT"`.
    pub method: String,
    /// The Worker's `/v1/data/{id}?sig=` (transport `worker`) or a presigned S3 URL (`s3`).
    pub url: String,
    /// Headers the request must carry, all of them signed (`content-length` too, which is not
    /// listed: every client sets it from the body).
    pub headers: BTreeMap<String, String>,
    /// When `url` stops working, seconds since the epoch.
    pub expires_at: u64,
    /// The file's ref once completed.
    #[serde(rename = "ref")]
    pub locker_ref: String,
}

/// The answer to `PUT /v1/data/{id}?sig=`, told apart by its `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum DataPut {
    /// `"stored"` (201): these bytes were written now.
    Stored { size: u64 },
    /// `"exists"` (200): the object was there already; its key is its hash, so these bytes.
    Exists { size: u64 },
}

impl DataPut {
    /// The HTTP status the Worker answers this with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Stored { .. } => 201,
            Self::Exists { .. } => 200,
        }
    }
}

/// The `status` of [`Complete`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompleteStatus {
    /// `"complete"` (200): verified and committed; the file exists.
    #[default]
    Complete,
    /// `"verifying"` (202): a multipart object too large to check within one request; the
    /// Worker finishes the check on its own (scheduled), and the upload is then committed, or
    /// aborted if the bytes are wrong. Ask `GET /v1/uploads/{id}` or complete again later.
    Verifying,
}

/// The answer to `POST /v1/uploads/{id}/complete`, the same for every repeated call (once
/// committed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complete {
    pub status: CompleteStatus,
    /// Always `false`: these bytes were uploaded.
    pub deduplicated: bool,
    #[serde(rename = "ref")]
    pub locker_ref: String,
    pub sha256: String,
    pub size: u64,
}

impl Complete {
    /// The HTTP status the Worker answers this with.
    pub fn http_status(&self) -> u16 {
        match self.status {
            CompleteStatus::Complete => 200,
            CompleteStatus::Verifying => 202,
        }
    }
}

/// `POST /v1/uploads:complete`: complete up to [`BATCH_MAX`] reservations in one request,
/// each as `POST /v1/uploads/{id}/complete` would. An id listed twice is completed once and
/// answered twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBatch {
    /// `up_...` ids, 1 to [`BATCH_MAX`].
    pub upload_ids: Vec<String>,
}

/// The answer to `POST /v1/uploads:complete` (200): one result per id, in the ids' order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedBatch {
    pub results: Vec<CompleteResult>,
}

/// One id's result: what `POST /v1/uploads/{id}/complete` would have answered (`complete` or
/// `verifying`), or its refusal with that route's status and error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CompleteResult {
    Completed(Complete),
    Refused(BatchRefusal),
}

/// The `status` of [`Abort`]: always `"aborted"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AbortStatus {
    #[default]
    Aborted,
}

/// The answer to `DELETE /v1/uploads/{id}` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    pub status: AbortStatus,
    pub upload_id: String,
}

/// A reservation's state, as stored (`uploads.state`) and counted in [`crate::api::Stats`]:
/// `pending`, then exactly one of the others, for good (`verifying` comes between `pending`
/// and `committed` or `aborted`, for a large multipart object whose check did not fit in one
/// request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    Pending,
    Committed,
    Aborted,
    Expired,
    Verifying,
}

impl UploadState {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Aborted => "aborted",
            Self::Expired => "expired",
            Self::Verifying => "verifying",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn reserve_request_as_the_browser_sends_it() {
        let full = json!({
            "namespace": "corp", "path": "q3/deck.pdf", "sha256": SHA, "size": 123456,
            "content_type": "application/pdf", "filename": "Deck.pdf", "expires_in": 60,
            "multipart": true,
        });
        let r: ReserveRequest = round_trip(&full);
        assert_eq!((r.expires_in, r.multipart), (Some(60), Some(true)));
        let minimal = json!({
            "namespace": "corp", "path": "q3/deck.pdf", "sha256": SHA, "size": 1,
            "content_type": "application/pdf",
        });
        let r: ReserveRequest = round_trip(&minimal);
        assert_eq!((r.filename, r.expires_in, r.multipart), (None, None, None));
    }

    #[test]
    fn reserve_request_reads_null_as_unset_and_refuses_what_the_worker_refuses() {
        let nulls = json!({
            "namespace": "corp", "path": "a", "sha256": SHA, "size": 1,
            "content_type": "text/plain", "filename": null, "expires_in": null,
        });
        let r: ReserveRequest = serde_json::from_value(nulls).unwrap();
        assert_eq!((r.filename, r.expires_in), (None, None));
        let base = json!({
            "namespace": "corp", "path": "a", "sha256": SHA, "size": 1, "content_type": "text/plain",
        });
        let mut surprise = base.clone();
        surprise["surprise"] = json!(1);
        refused::<ReserveRequest>(&surprise, "surprise");
        for size in [json!(1.5), json!(-1), json!("1")] {
            let mut bad = base.clone();
            bad["size"] = size;
            refused::<ReserveRequest>(&bad, "");
        }
        let mut missing = base;
        missing.as_object_mut().unwrap().remove("sha256");
        refused::<ReserveRequest>(&missing, "sha256");
    }

    #[test]
    fn reserve_answer_decodes_both_variants() {
        // uploads.rs try_dedup
        let dedup = json!({
            "status": "deduplicated", "deduplicated": true, "ref": "locker://corp/q3/deck.pdf",
            "sha256": SHA, "size": 123456,
        });
        let answer: Reserved = round_trip(&dedup);
        assert_eq!(answer.http_status(), 200);
        let Reserved::Deduplicated(d) = answer else {
            panic!("not deduplicated: {answer:?}");
        };
        assert!(d.deduplicated);
        assert_eq!(d.locker_ref, "locker://corp/q3/deck.pdf");

        // uploads.rs reserve, worker transport
        let upload = json!({
            "status": "upload", "upload_id": "up_0123abcd", "method": "PUT",
            "url": "http://127.0.0.1:8787/v1/data/up_0123abcd?sig=abc.def",
            "headers": {"content-type": "application/pdf"},
            "expires_at": 1_764_000_000u64, "ref": "locker://corp/q3/deck.pdf",
        });
        let answer: Reserved = round_trip(&upload);
        assert_eq!(answer.http_status(), 201);
        let Reserved::Upload(plan) = answer else {
            panic!("not an upload: {answer:?}");
        };
        assert_eq!(plan.headers["content-type"], "application/pdf");

        // s3 transport: the presigned PUT's signed headers
        let direct = json!({
            "status": "upload", "upload_id": "up_1", "method": "PUT",
            "url": "http://127.0.0.1:9000/bucket/t/acme/sha256/x?X-Amz-Signature=0",
            "headers": {
                "content-type": "application/octet-stream",
                "if-none-match": "*",
                "x-amz-checksum-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
            },
            "expires_at": 1_764_000_000u64, "ref": "locker://direct/a/file.bin",
        });
        round_trip::<Reserved>(&direct);
    }

    #[test]
    fn reserve_answer_refuses_another_status() {
        let other = json!({"status": "complete", "ref": "locker://a/b", "sha256": SHA, "size": 1});
        refused::<Reserved>(&other, "complete");
        refused::<Reserved>(&json!({"ref": "locker://a/b"}), "status");
    }

    #[test]
    fn complete_batch_results_are_single_answers_or_error_bodies_in_order() {
        // uploads/complete_batch.rs
        let answer = json!({"results": [
            {"status": "complete", "deduplicated": false, "ref": "locker://corp/a",
             "sha256": SHA, "size": 1},
            {"http_status": 404, "error": {"code": "not_found", "message": "no such upload"}},
            {"status": "verifying", "deduplicated": false, "ref": "locker://corp/b",
             "sha256": SHA, "size": 2},
        ]});
        let batch: CompletedBatch = round_trip(&answer);
        assert!(matches!(
            &batch.results[0],
            CompleteResult::Completed(c) if c.http_status() == 200
        ));
        assert!(matches!(
            &batch.results[1],
            CompleteResult::Refused(BatchRefusal {
                http_status: 404,
                ..
            })
        ));
        assert!(matches!(
            &batch.results[2],
            CompleteResult::Completed(c) if c.http_status() == 202
        ));
        let request = json!({"upload_ids": ["up_1", "up_2"]});
        let r: CompleteBatch = round_trip(&request);
        assert_eq!(r.upload_ids.len(), 2);
        refused::<CompleteBatch>(&json!({"upload_ids": [], "more": 1}), "more");
        refused::<CompleteBatch>(&json!({"ids": ["up_1"]}), "");
    }

    #[test]
    fn batch_results_are_single_answers_or_error_bodies_in_order() {
        // uploads/batch.rs reserve_batch
        let answer = json!({"results": [
            {"status": "deduplicated", "deduplicated": true, "ref": "locker://corp/a",
             "sha256": SHA, "size": 1},
            {"http_status": 403,
             "error": {"code": "forbidden", "message": "this key may not write to other"}},
            {"status": "upload", "upload_id": "up_1", "method": "PUT",
             "url": "http://127.0.0.1:8787/v1/data/up_1?sig=a.b",
             "headers": {"content-type": "text/plain"}, "expires_at": 1_764_000_000u64,
             "ref": "locker://corp/b"},
        ]});
        let batch: ReservedBatch = round_trip(&answer);
        assert!(matches!(
            batch.results[0],
            BatchResult::Reserved(Reserved::Deduplicated(_))
        ));
        assert_eq!(
            batch.results[1],
            BatchResult::Refused(BatchRefusal {
                http_status: 403,
                error: ErrorDetail {
                    code: "forbidden".into(),
                    message: "this key may not write to other".into(),
                },
            })
        );
        assert!(matches!(
            batch.results[2],
            BatchResult::Reserved(Reserved::Upload(_))
        ));
        // Neither an answer nor an error body: refused, not read as something else.
        refused::<ReservedBatch>(&json!({"results": [{"status": "complete"}]}), "");
        let request = json!({"uploads": [{
            "namespace": "corp", "path": "a", "sha256": SHA, "size": 1,
            "content_type": "text/plain",
        }]});
        let r: ReserveBatch = round_trip(&request);
        assert_eq!(r.uploads.len(), 1);
        refused::<ReserveBatch>(&json!({"uploads": [], "more": 1}), "more");
    }

    #[test]
    fn data_put_answers() {
        let stored: DataPut = round_trip(&json!({"status": "stored", "size": 5}));
        assert_eq!(
            (stored.http_status(), stored),
            (201, DataPut::Stored { size: 5 })
        );
        let exists: DataPut = round_trip(&json!({"status": "exists", "size": 5}));
        assert_eq!(exists.http_status(), 200);
    }

    #[test]
    fn complete_and_abort_answers() {
        // uploads.rs committed_answer
        let done = json!({
            "status": "complete", "deduplicated": false, "ref": "locker://corp/q3/deck.pdf",
            "sha256": SHA, "size": 123456,
        });
        let c: Complete = round_trip(&done);
        assert_eq!(c.status, CompleteStatus::Complete);
        refused::<Complete>(
            &json!({"status": "aborted", "deduplicated": false, "ref": "r", "sha256": SHA, "size": 1}),
            "aborted",
        );
        // uploads.rs abort
        let a: Abort = round_trip(&json!({"status": "aborted", "upload_id": "up_1"}));
        assert_eq!(a.status, AbortStatus::Aborted);
    }

    #[test]
    fn upload_states_by_name() {
        for (state, name) in [
            (UploadState::Pending, "pending"),
            (UploadState::Committed, "committed"),
            (UploadState::Aborted, "aborted"),
            (UploadState::Expired, "expired"),
            (UploadState::Verifying, "verifying"),
        ] {
            assert_eq!(state.as_str(), name);
            assert_eq!(round_trip::<UploadState>(&json!(name)), state);
        }
    }
}
