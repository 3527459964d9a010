//! `api_keys`: only `hex(sha256(secret))` of a key is stored, with its scopes as JSON.

use locker_core::api::KeyInfo;
use locker_core::scope::Scopes;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use super::{changed, n, opt, s, D1Registry};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{KeyRow, Keys, LogRecord, NewKey, Reach};

/// An `api_keys` row as D1 answers it.
#[derive(Deserialize)]
struct Stored {
    tenant: String,
    scopes: String,
    secret_hash: String,
    revoked: u8,
    #[serde(default)]
    expires_at: Option<u64>,
}

impl Stored {
    fn parse(self) -> ApiResult<KeyRow> {
        let scopes: Scopes = serde_json::from_str(&self.scopes)
            .map_err(|_| ApiError::new(ErrorKind::Internal, "stored scopes are unreadable"))?;
        Ok(KeyRow {
            tenant: self.tenant,
            scopes,
            secret_hash: self.secret_hash,
            revoked: self.revoked != 0,
            expires_at: self.expires_at,
        })
    }
}

const KEY_COLUMNS: &str = "tenant, scopes, secret_hash, revoked, expires_at";

/// An `api_keys` row as listed: everything but the secret's hash.
#[derive(Deserialize)]
struct Listed {
    id: String,
    tenant: String,
    #[serde(default)]
    label: Option<String>,
    scopes: String,
    revoked: u8,
    created_at: u64,
    #[serde(default)]
    revoked_at: Option<u64>,
    #[serde(default)]
    expires_at: Option<u64>,
}

impl Listed {
    fn parse(self) -> ApiResult<KeyInfo> {
        let scopes: Scopes = serde_json::from_str(&self.scopes)
            .map_err(|_| ApiError::new(ErrorKind::Internal, "stored scopes are unreadable"))?;
        Ok(KeyInfo {
            id: self.id,
            tenant: self.tenant,
            label: self.label,
            scopes,
            created_at: self.created_at,
            // Stored in milliseconds; answered in seconds, as `POST /v1/keys` answers it.
            expires_at: self.expires_at.map(|ms| ms / 1000),
            revoked: self.revoked != 0,
            revoked_at: self.revoked_at,
        })
    }
}

/// The listed columns: never `secret_hash`.
macro_rules! listed {
    ($where:literal, $limit:literal) => {
        concat!(
            "SELECT id, tenant, label, scopes, revoked, created_at, revoked_at, expires_at \
             FROM api_keys WHERE ",
            $where,
            " ORDER BY id LIMIT ",
            $limit
        )
    };
}

/// Every tenant's keys (the bootstrap admin): `?1` cursor, `?2` limit.
pub(crate) const KEYS_ALL_SQL: &str = listed!("id > ?1", "?2");
/// One tenant's: `?1` tenant, `?2` cursor, `?3` limit.
pub(crate) const KEYS_TENANT_SQL: &str = listed!("tenant = ?1 AND id > ?2", "?3");
/// One tenant's keys whose every namespace is in `?2` (a JSON array): a key of `*` or of any
/// namespace outside the array is not shown. `?3` cursor, `?4` limit.
pub(crate) const KEYS_NAMESPACES_SQL: &str = listed!(
    "tenant = ?1 AND id > ?3 AND NOT EXISTS (SELECT 1 FROM json_each(scopes, '$.namespaces') k \
     WHERE k.value NOT IN (SELECT value FROM json_each(?2)))",
    "?4"
);

impl Keys for D1Registry {
    async fn key(&self, id: &str) -> ApiResult<Option<KeyRow>> {
        let row: Option<Stored> = self
            .first(
                "api_keys",
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
                &[s(id)],
            )
            .await?;
        row.map(Stored::parse).transpose()
    }

    async fn active_key(&self, id: &str, tenant: Option<&str>) -> ApiResult<Option<KeyRow>> {
        let row: Option<Stored> = self
            .first(
                "api_keys",
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys \
                     WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND revoked = 0"
                ),
                &[s(id), opt(tenant)],
            )
            .await?;
        row.map(Stored::parse).transpose()
    }

    async fn create_key(&self, key: &NewKey<'_>, log: &LogRecord) -> ApiResult<()> {
        let scopes = serde_json::to_string(key.scopes)
            .map_err(|_| ApiError::new(ErrorKind::Internal, "scopes did not encode"))?;
        self.batch(vec![
            self.stmt(
                "INSERT INTO api_keys (id, tenant, scopes, secret_hash, label, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &[
                    s(key.id),
                    s(key.tenant),
                    s(&scopes),
                    s(key.secret_hash),
                    opt(key.label),
                    n(self.now_ms),
                    key.expires_at.map_or(JsValue::NULL, n),
                ],
            )?,
            self.log_statement(log, "", &[])?,
        ])
        .await?;
        Ok(())
    }

    async fn revoke_key(&self, id: &str, tenant: Option<&str>) -> ApiResult<bool> {
        let changes = self
            .batch(vec![self.stmt(
                "UPDATE api_keys SET revoked = 1, revoked_at = ?3 \
                 WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) AND revoked = 0",
                &[s(id), opt(tenant), n(self.now_ms)],
            )?])
            .await?;
        Ok(changed(&changes, 0))
    }

    async fn list_keys(&self, reach: &Reach, cursor: &str, limit: u64) -> ApiResult<Vec<KeyInfo>> {
        let (sql, args) = match reach {
            Reach::Everything => (KEYS_ALL_SQL, vec![s(cursor), n(limit)]),
            Reach::Tenant(t) => (KEYS_TENANT_SQL, vec![s(t), s(cursor), n(limit)]),
            Reach::Namespaces(t, ns) => {
                (KEYS_NAMESPACES_SQL, vec![s(t), s(ns), s(cursor), n(limit)])
            }
        };
        let rows: Vec<Listed> = self.all("api_keys", sql, &args).await?;
        rows.into_iter().map(Listed::parse).collect()
    }
}
