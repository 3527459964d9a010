//! The HTTP API's wire format, defined once.
//!
//! The rule: every request body and every answer body of the API is a serde type here. The
//! Worker encodes its answers and decodes its requests with these types; the browser module and
//! the Rust client decode the same answers and encode the same requests. No JSON is read or
//! written by string keys anywhere else, so a field renamed here is renamed for all three at
//! once. The host tests pin each type to the exact JSON the Worker sends (`captured.json` holds
//! real answers of the Worker).
//!
//! Conventions, kept the same in every type:
//! - Request bodies refuse unknown fields (`deny_unknown_fields`), as the Worker does: a typo in
//!   a field name is an error, not a silently ignored option. Optional request fields are left
//!   out when unset, which the Worker reads exactly like `null`.
//! - Answers accept unknown fields, so a client keeps working when the Worker adds one.
//! - Optional answer fields are `null` when the Worker writes `null` (`cursor`, `filename`,
//!   `binding`, ...) and absent only where the Worker leaves them out (`secrets`, and a file's
//!   `url` outside `GET /v1/files/{namespace}/{path}`); each field says which.
//! - Sizes, counts, times and durations are `u64`, never `f64`: seconds since the epoch for
//!   `expires_at`, milliseconds for `created_at`, `updated_at` and `ts`, and for `ms`.
//! - Names, refs, digests and ids are plain `String`s: the Worker validates what it receives
//!   with its own error codes (`invalid_ref`, `invalid_sha256`, ...), which a failed decode here
//!   would replace by `invalid_json`; and the log records refused input as it came. A caller
//!   who needs a [`crate::LockerRef`] or a [`crate::Sha256Hex`] parses the string. Only
//!   [`RegisterBucket`]'s `provider`, `transport` and `verify` are enums in a request: a name
//!   outside their set is then refused as `invalid_json` (today: `invalid_bucket`), 400 either
//!   way.
//! - Closed sets are enums: [`Op`], [`Provider`], [`Transport`], [`Verify`], [`UploadState`],
//!   [`Operation`], and each answer's `status`.
//!
//! Plain derives only: the browser module ships this code, and every generic helper would be
//! paid for in its download size.

mod buckets;
mod error;
mod files;
mod gateway;
mod keys;
mod log;
mod moves;
mod multipart;
mod uploads;

pub use buckets::{
    Bucket, BucketList, Provider, RegisterBucket, Route, RouteList, RouteSet, SetRoute, Transport,
    Verify,
};
pub use error::{ErrorBody, ErrorDetail};
pub use files::{Delete, FileInfo, FileList};
pub use gateway::{GatewayDeduplicated, GatewayPut, GatewayStored, SignedUrl, SignedUrlRequest};
pub use keys::{
    CreateKey, DemoEcho, KeyCreated, KeyInfo, KeyList, KeyRevoked, MintToken, Op, Scopes,
    TokenMinted,
};
pub use log::{
    BucketStats, Integrity, LogEntry, LogPage, Operation, Stats, StorageChecks, UploadCounts,
};
pub use moves::{Move, MoveProblem, MoveProblemKind, MoveState, StartMove};
pub use multipart::{
    MultipartInfo, MultipartPlan, PartDigest, PartPut, PartUrl, PartUrls, PartsRequest, StoredPart,
    UploadInfo,
};
pub use uploads::{
    Abort, AbortStatus, BatchRefusal, BatchResult, Complete, CompleteBatch, CompleteResult,
    CompleteStatus, CompletedBatch, DataPut, Deduplicated, ReserveBatch, ReserveRequest, Reserved,
    ReservedBatch, UploadPlan, UploadState, BATCH_MAX,
};

/// `GET /healthz` (200 or 503); defined in [`crate::health`], part of the wire format all the same.
pub use crate::health::{Check, Health, HealthStatus};

#[cfg(test)]
pub(crate) mod test_support {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    /// Decodes `sample` (JSON as the Worker sends it) into `T`, encodes it again, and asserts the
    /// result is the same JSON value: no field lost, renamed, added or turned from `null` to
    /// absent.
    pub(crate) fn round_trip<T: Serialize + DeserializeOwned>(sample: &Value) -> T {
        let decoded: T = serde_json::from_value(sample.clone())
            .unwrap_or_else(|e| panic!("{sample} does not decode: {e}"));
        let encoded = serde_json::to_value(&decoded).unwrap();
        assert_eq!(&encoded, sample, "encoding changed the JSON");
        decoded
    }

    /// Asserts that `sample` is refused by `T`, and that the refusal names `word` (a field).
    pub(crate) fn refused<T: DeserializeOwned + std::fmt::Debug>(sample: &Value, word: &str) {
        match serde_json::from_value::<T>(sample.clone()) {
            Ok(v) => panic!("{sample} was accepted as {v:?}"),
            Err(e) => assert!(e.to_string().contains(word), "{sample}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::test_support::round_trip;
    use super::*;

    /// [`round_trip`] for an answer whose value implies no status.
    fn decodes<T: serde::Serialize + serde::de::DeserializeOwned>(body: &Value) -> Option<u16> {
        round_trip::<T>(body);
        None
    }

    #[test]
    fn health_answer() {
        // health.rs handle
        let h: Health = round_trip(&json!({
            "status": "ok", "version": "0.1.0", "server": "local",
            "d1": {"ok": true, "detail": "1 bucket(s) registered", "ms": 2},
            "r2": {"ok": true, "detail": "binding BLOBS answered", "ms": 3},
        }));
        assert!(h.d1.ok && h.r2.ok);
    }

    /// One answer of every kind, captured from the real Worker (`wrangler dev`, local R2 and D1,
    /// s3s-fs for the routed bucket) when these types were written, as `{route, type, status,
    /// body}`: each decodes into its type and encodes back to the same JSON, and the tagged
    /// answers name the status the Worker sent. (Key secrets and the S3 access key id are
    /// replaced by placeholders; log pages are trimmed; an entry marked `amended` says what was
    /// added to it for a field the Worker answers since.)
    #[test]
    fn answers_captured_from_the_worker() {
        let captured: Vec<Value> = serde_json::from_str(include_str!("captured.json")).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for c in &captured {
            let (ty, body) = (c["type"].as_str().unwrap(), &c["body"]);
            let status = u16::try_from(c["status"].as_u64().unwrap()).unwrap();
            let route = &c["route"];
            // The status the answer itself implies, where its type tells the variants apart.
            let implied = match ty {
                "Abort" => decodes::<Abort>(body),
                "Bucket" => decodes::<Bucket>(body),
                "BucketList" => decodes::<BucketList>(body),
                "Complete" => decodes::<Complete>(body),
                "DataPut" => Some(round_trip::<DataPut>(body).http_status()),
                "Delete" => decodes::<Delete>(body),
                "DemoEcho" => decodes::<DemoEcho>(body),
                "ErrorBody" => {
                    round_trip::<ErrorBody>(body);
                    assert!(status >= 400, "{route}: an error body with {status}");
                    None
                }
                "FileInfo" => decodes::<FileInfo>(body),
                "FileList" => decodes::<FileList>(body),
                "GatewayPut" => Some(round_trip::<GatewayPut>(body).http_status()),
                "Health" => decodes::<Health>(body),
                "KeyCreated" => decodes::<KeyCreated>(body),
                "KeyList" => decodes::<KeyList>(body),
                "KeyRevoked" => decodes::<KeyRevoked>(body),
                "LogPage" => {
                    let page = round_trip::<LogPage>(body);
                    for e in &page.entries {
                        assert_ne!(e.operation, Operation::Unknown, "{route}: {e:?}");
                    }
                    None
                }
                "Reserved" => Some(round_trip::<Reserved>(body).http_status()),
                "RouteList" => decodes::<RouteList>(body),
                "RouteSet" => decodes::<RouteSet>(body),
                "SignedUrl" => decodes::<SignedUrl>(body),
                "Stats" => decodes::<Stats>(body),
                "TokenMinted" => decodes::<TokenMinted>(body),
                other => panic!("no type for {other}"),
            };
            if let Some(implied) = implied {
                assert_eq!(implied, status, "{route}: {body}");
            }
            if ty != "ErrorBody" {
                assert!((200..300).contains(&status), "{route}: {status}");
            }
            seen.insert(ty);
        }
        assert_eq!(seen.len(), 22, "every answer type is captured: {seen:?}");
    }

    #[test]
    fn round_trip_notices_a_field_that_changes_form() {
        // The helper itself must fail when encoding differs from the sample, or every test
        // above proves nothing: `filename: null` must not come back absent, nor an extra key
        // be added.
        let sample = json!({"files": [], "cursor": null});
        let decoded: FileList = serde_json::from_value(sample.clone()).unwrap();
        let mut encoded = serde_json::to_value(&decoded).unwrap();
        assert_eq!(encoded, sample);
        encoded.as_object_mut().unwrap().remove("cursor");
        assert_ne!(encoded, sample);
        let caught = std::panic::catch_unwind(|| {
            round_trip::<FileList>(&json!({"files": [], "cursor": null, "extra": 1}))
        });
        assert!(
            caught.is_err(),
            "an unknown answer field was silently dropped"
        );
    }
}
