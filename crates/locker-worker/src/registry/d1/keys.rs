//! `api_keys`: only `hex(sha256(secret))` of a key is stored, with its scopes as JSON.

use locker_core::scope::Scopes;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use super::{changed, n, opt, s, D1Registry};
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::registry::{KeyRow, Keys, LogRecord, NewKey};

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
}
