//! The bucket behind the `BLOBS` binding, registered under its derived id.

use locker_core::{BucketId, BucketIdentity};
use wasm_bindgen::JsValue;
use worker::{D1PreparedStatement, Env};

use crate::app::{env_var as var, n, s, App};
use crate::bindings;
use crate::error::ApiResult;

struct DefaultBucket {
    account_id: String,
    jurisdiction: Option<String>,
    name: String,
}

fn default_bucket(env: &Env) -> DefaultBucket {
    let jurisdiction = var(env, bindings::JURISDICTION, "default");
    DefaultBucket {
        account_id: var(env, bindings::ACCOUNT_ID, "local"),
        jurisdiction: (jurisdiction != "default").then_some(jurisdiction),
        name: var(env, bindings::BUCKET_NAME, "locker-blobs"),
    }
}

pub fn default_bucket_id(env: &Env) -> BucketId {
    let b = default_bucket(env);
    BucketId::derive(&BucketIdentity {
        account_id: &b.account_id,
        jurisdiction: b.jurisdiction.as_deref(),
        name: &b.name,
    })
}

/// `INSERT OR IGNORE` of the default bucket's row, put first in every batch that references
/// it, so a fresh database needs no manual registration and no file points at an unknown bucket.
pub fn register_default(app: &App) -> ApiResult<D1PreparedStatement> {
    let b = default_bucket(&app.env);
    let args: [JsValue; 6] = [
        s(app.bucket_id.as_str()),
        s(&b.name),
        s(bindings::BLOBS),
        s(&b.account_id),
        s(b.jurisdiction.as_deref().unwrap_or("default")),
        n(app.now_ms),
    ];
    app.stmt(
        "INSERT OR IGNORE INTO buckets \
         (id, name, provider, transport, binding, account_id, jurisdiction, active, created_at) \
         VALUES (?1, ?2, 'r2', 'worker', ?3, ?4, ?5, 1, ?6)",
        &args,
    )
}
