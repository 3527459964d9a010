//! The bucket registry and routing: `POST /v1/buckets`, `GET /v1/buckets`,
//! `POST /v1/buckets/{id}/activate|deactivate`, `PUT /v1/routes/{namespace}`, `GET /v1/routes`.

use serde::{Deserialize, Serialize};

/// Who runs the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Cloudflare R2, through a binding or its S3 API.
    R2,
    /// Any other S3-compatible server.
    S3,
}

impl Provider {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::R2 => "r2",
            Self::S3 => "s3",
        }
    }
}

/// How bytes reach the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Through this Worker's data plane into an R2 binding.
    Worker,
    /// Straight to storage with presigned S3 URLs.
    S3,
}

impl Transport {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::S3 => "s3",
        }
    }
}

/// How `complete` verifies what a client stored in an `s3` transport bucket with one PUT.
/// Uploads in parts are read back and hashed whatever the policy (S3's checksum of an object
/// in parts is one of its parts' checksums, not of its bytes), and `worker` transport buckets
/// have none: R2 checks the SHA-256 of every write through the binding itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Read the stored object back and hash it (the default): right on any S3 server, also
    /// one that keeps bytes after refusing their checksum (s3s-fs does).
    #[default]
    ReadBack,
    /// Take the SHA-256 the server reports for the object (a HEAD with checksum mode) when it
    /// is the reserved one and the size is right; read back as [`Verify::ReadBack`] when it
    /// reports none or another. Only for a server that refuses a PUT whose
    /// `x-amz-checksum-sha256` does not match, keeping nothing, and honours `If-None-Match: *`
    /// atomically (AWS S3, R2): the Worker then trusts its report instead of the bytes.
    Checksum,
}

impl Verify {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadBack => "read_back",
            Self::Checksum => "checksum",
        }
    }
}

/// `POST /v1/buckets` (the deployment's admin key). `provider` and `transport` are typed: a
/// name outside the set is refused when the body is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBucket {
    /// S3 bucket naming: 3-63 of `a-z 0-9 . -`.
    pub name: String,
    pub provider: Provider,
    /// Default: `worker` for `r2`, `s3` for `s3` (its only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// The R2 binding, for the `worker` transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// Required for `r2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `eu`, `fedramp`; default `default`. R2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Required for `s3`, e.g. `https://s3.us-east-1.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Default `us-east-1` for `s3`; R2's is `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `https://host/bucket/key` (default `true`) rather than `https://bucket.host/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// The `s3` transport's verification policy (default `read_back`); refused for the
    /// `worker` transport, which has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

/// A registered bucket: the answer to `POST /v1/buckets` (201) and to activate/deactivate
/// (200), and an entry of [`BucketList`]. Credentials are never in it, only their names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Derived from the bucket's identity (see [`crate::BucketId`]).
    pub id: String,
    pub name: String,
    pub provider: Provider,
    pub transport: Transport,
    /// The R2 binding of a `worker` bucket; `null` otherwise.
    pub binding: Option<String>,
    /// R2: the account id; `s3`: the endpoint's host.
    pub account_id: String,
    /// `default` unless an R2 jurisdiction was named.
    pub jurisdiction: String,
    /// The S3 endpoint of an `s3` transport bucket; `null` otherwise.
    pub endpoint: Option<String>,
    pub region: String,
    pub path_style: bool,
    /// How complete verifies a single PUT into an `s3` transport bucket; `null` for the
    /// `worker` transport (R2 checks every write itself). Absent in answers of a Worker
    /// from before the policy, which read back.
    #[serde(default)]
    pub verify: Option<Verify>,
    pub active: bool,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// For the `s3` transport only (absent otherwise): the names of the two Worker secrets
    /// holding its access key id and secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<[String; 2]>,
}

/// The answer to `GET /v1/buckets` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketList {
    pub buckets: Vec<Bucket>,
}

/// `PUT /v1/routes/{namespace}` (tenant admin; `*` for the tenant's default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRoute {
    pub bucket_id: String,
}

/// The answer to `PUT /v1/routes/{namespace}` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSet {
    /// The namespace, or `*`.
    pub namespace: String,
    pub bucket_id: String,
}

/// One of the tenant's routes in [`RouteList`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The namespace, or `*`.
    pub namespace: String,
    pub bucket_id: String,
    /// Milliseconds since the epoch.
    pub updated_at: u64,
}

/// The answer to `GET /v1/routes` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteList {
    pub routes: Vec<Route>,
    /// Where namespaces without a route go: the `BLOBS` binding's bucket.
    pub default_bucket_id: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    const R2_ID: &str = "9414552e012c99d73aee04a065ac8c616ea4148d48bc811ecda2ff2b2022c208";
    const S3_ID: &str = "51e298582e6155cf626d895b3329603fd628f19d1322ea79beabc929b57e2be4";

    #[test]
    fn register_requests_as_the_readme_shows_them() {
        let r2: RegisterBucket = round_trip(&json!({
            "name": "uploads-eu", "provider": "r2", "transport": "s3",
            "account_id": "023e105f4ecef8ad9ca31a8372d0c353", "jurisdiction": "eu",
        }));
        assert_eq!(
            (r2.provider, r2.transport),
            (Provider::R2, Some(Transport::S3))
        );
        round_trip::<RegisterBucket>(&json!({
            "name": "archive", "provider": "s3", "endpoint": "https://s3.us-east-1.amazonaws.com",
            "region": "us-east-1", "path_style": false,
        }));
        round_trip::<RegisterBucket>(&json!({
            "name": "more", "provider": "r2", "transport": "worker", "binding": "MORE",
            "account_id": "local",
        }));
        let checked: RegisterBucket = round_trip(&json!({
            "name": "aws", "provider": "s3", "endpoint": "https://s3.us-east-1.amazonaws.com",
            "verify": "checksum",
        }));
        assert_eq!(checked.verify, Some(Verify::Checksum));
        refused::<RegisterBucket>(
            &json!({"name": "x", "provider": "s3", "verify": "trust"}),
            "trust",
        );
        refused::<RegisterBucket>(&json!({"name": "x", "provider": "gcs"}), "gcs");
        refused::<RegisterBucket>(
            &json!({"name": "x", "provider": "s3", "bucket": "y"}),
            "bucket",
        );
    }

    #[test]
    fn bucket_answers() {
        // buckets.rs public: the row, `active`/`path_style` as booleans, `secrets` for s3
        let direct: Bucket = round_trip(&json!({
            "id": S3_ID, "name": "e2e-direct", "provider": "s3", "transport": "s3",
            "binding": null, "account_id": "127.0.0.1", "jurisdiction": "default",
            "endpoint": "http://127.0.0.1:8014", "region": "us-east-1", "path_style": true,
            "verify": "read_back", "active": true, "created_at": 1_764_000_000_123u64,
            "secrets": ["LOCKER_S3_E2E_DIRECT_ACCESS_KEY_ID", "LOCKER_S3_E2E_DIRECT_SECRET_ACCESS_KEY"],
        }));
        assert!(direct.secrets.is_some());
        let default = json!({
            "id": R2_ID, "name": "locker-blobs", "provider": "r2", "transport": "worker",
            "binding": "BLOBS", "account_id": "local", "jurisdiction": "default",
            "endpoint": null, "region": "auto", "path_style": true, "verify": null,
            "active": true, "created_at": 1_764_000_000_000u64,
        });
        let list: BucketList = round_trip(&json!({"buckets": [default]}));
        assert_eq!(list.buckets[0].secrets, None);
        assert_eq!(list.buckets[0].endpoint, None);
        assert_eq!(direct.verify, Some(Verify::ReadBack));
        // A Worker from before the policy answers no `verify`: such a bucket reads back.
        let mut old = default.clone();
        old.as_object_mut().unwrap().remove("verify");
        let old: Bucket = serde_json::from_value(old).unwrap();
        assert_eq!(old.verify.unwrap_or_default(), Verify::ReadBack);
    }

    #[test]
    fn routes() {
        let set: SetRoute = round_trip(&json!({"bucket_id": S3_ID}));
        assert_eq!(set.bucket_id, S3_ID);
        refused::<SetRoute>(&json!({"bucket_id": S3_ID, "namespace": "eu"}), "namespace");
        round_trip::<RouteSet>(&json!({"namespace": "*", "bucket_id": S3_ID}));
        let list: RouteList = round_trip(&json!({
            "routes": [{"namespace": "*", "bucket_id": R2_ID, "updated_at": 5},
                       {"namespace": "eu", "bucket_id": S3_ID, "updated_at": 6}],
            "default_bucket_id": R2_ID,
        }));
        assert_eq!(list.routes.len(), 2);
        round_trip::<RouteList>(&json!({"routes": [], "default_bucket_id": R2_ID}));
    }

    #[test]
    fn names() {
        for p in [Provider::R2, Provider::S3] {
            assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
        }
        for t in [Transport::Worker, Transport::S3] {
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        for v in [Verify::ReadBack, Verify::Checksum] {
            assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
        }
    }
}
