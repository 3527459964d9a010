//! Credentials: `POST /v1/keys`, `GET /v1/keys`, `DELETE /v1/keys/{id}`, `POST /v1/tokens` (and the demo's
//! `POST /demo/token`, which answers the same), and the demo's `POST /demo/echo`.

use serde::{Deserialize, Serialize};

// `Op` and `Scopes` are wire types and the subset rule's input alike: one definition, in
// `scope`, re-exported here so the API reads as one module.
pub use crate::scope::{Op, Scopes};

/// `POST /v1/keys` (admin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Required for the bootstrap admin; a tenant admin may only name its own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Not empty; namespaces or `*`.
    pub namespaces: Vec<String>,
    /// Not empty.
    pub ops: Vec<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// At most 200 bytes; answered only by `GET /v1/keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Seconds until the key stops working (at most ten years); absent: never, unless the
    /// creating key expires, whose expiry it then inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// The answer to `POST /v1/keys` (201). `key` is shown this once: only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCreated {
    /// 16 hex digits; `DELETE /v1/keys/{id}` revokes it.
    pub id: String,
    /// `lk_{id}.{secret}`, the Bearer credential.
    pub key: String,
    pub tenant: String,
    pub scopes: Scopes,
    /// When the key stops working, seconds since the epoch; `null` when it never does.
    pub expires_at: Option<u64>,
}

/// The answer to `DELETE /v1/keys/{id}` (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub id: String,
    /// Always `true`.
    pub revoked: bool,
}

/// One key of `GET /v1/keys`: what it may do and whether it still works. Never its secret
/// nor the secret's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub tenant: String,
    /// The `label` it was created with; `null` without one.
    pub label: Option<String>,
    /// As stored: the limits the creator gave, or inherited from the creator.
    pub scopes: Scopes,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    /// When the key stops working, seconds since the epoch (as `POST /v1/keys` answers it);
    /// `null` when it never does. An expired key is listed until it is revoked.
    pub expires_at: Option<u64>,
    pub revoked: bool,
    /// Milliseconds since the epoch; `null` while not revoked.
    pub revoked_at: Option<u64>,
}

/// The answer to `GET /v1/keys?cursor=&limit=` (200): a page of keys ordered by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    /// Pass as `cursor=` for the next page (the last key's id); `null` on the last page.
    pub cursor: Option<String>,
}

/// `POST /v1/tokens`: a browser upload token for one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintToken {
    pub namespace: String,
    /// Paths the token may write must start with this; default `""` (any).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    /// Bytes; at most the key's limit, which is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Each allowed to the key too; default `[]`: the key's types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Seconds, 1 to 3600; default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// The answer to `POST /v1/tokens` and `POST /demo/token` (201): the token and the limits it
/// carries, resolved (the key's where the request left them out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMinted {
    /// `lkt_...`, the Bearer credential for the browser.
    pub token: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
    pub namespace: String,
    pub path_prefix: String,
    pub max_size: u64,
    pub types: Vec<String>,
}

/// The answer to `POST /demo/echo` (200): the submitted form's fields, `[name, value]`, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoEcho {
    pub fields: Vec<[String; 2]>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::test_support::{refused, round_trip};

    #[test]
    fn create_key_requests() {
        let full = json!({
            "tenant": "acme", "namespaces": ["corp", "*"], "ops": ["read", "write", "delete", "admin"],
            "max_size": 1000, "types": ["image/*", "application/pdf"], "label": "ci",
        });
        let k: CreateKey = round_trip(&full);
        assert_eq!(k.ops, [Op::Read, Op::Write, Op::Delete, Op::Admin]);
        let minimal: CreateKey = round_trip(&json!({"namespaces": ["*"], "ops": ["read"]}));
        assert_eq!((minimal.tenant, minimal.expires_in), (None, None));
        let expiring: CreateKey =
            round_trip(&json!({"namespaces": ["*"], "ops": ["read"], "expires_in": 86400}));
        assert_eq!(expiring.expires_in, Some(86400));
        refused::<CreateKey>(
            &json!({"namespaces": ["*"], "ops": ["read"], "scope": 1}),
            "scope",
        );
        refused::<CreateKey>(&json!({"namespaces": ["*"], "ops": ["root"]}), "root");
    }

    #[test]
    fn key_created_and_revoked() {
        // keys.rs create (with key expiry, main a895ae2); scopes as stored, without the limits
        // that were not given
        let created: KeyCreated = round_trip(&json!({
            "id": "0123456789abcdef", "key": "lk_0123456789abcdef.c2VjcmV0", "tenant": "acme",
            "scopes": {"namespaces": ["corp"], "ops": ["read", "write"]},
            "expires_at": null,
        }));
        assert_eq!((created.scopes.max_size, created.expires_at), (None, None));
        round_trip::<KeyCreated>(&json!({
            "id": "0123456789abcdef", "key": "lk_0123456789abcdef.c2VjcmV0", "tenant": "acme",
            "scopes": {"namespaces": ["*"], "ops": ["admin"], "max_size": 5, "types": ["*/*"]},
            "expires_at": 1_764_086_400u64,
        }));
        let revoked: KeyRevoked = round_trip(&json!({"id": "0123456789abcdef", "revoked": true}));
        assert!(revoked.revoked);
    }

    #[test]
    fn key_list() {
        // keys.rs list: a revoked key with its label, a live one without
        let page: KeyList = round_trip(&json!({
            "keys": [
                {
                    "id": "0123456789abcdef", "tenant": "acme", "label": "ci",
                    "scopes": {"namespaces": ["corp"], "ops": ["read"], "max_size": 5},
                    "created_at": 1_764_000_000_000u64, "expires_at": 1_764_086_400u64,
                    "revoked": true, "revoked_at": 1_764_000_001_000u64,
                },
                {
                    "id": "fedcba9876543210", "tenant": "acme", "label": null,
                    "scopes": {"namespaces": ["*"], "ops": ["admin"]},
                    "created_at": 1_764_000_000_000u64, "expires_at": null,
                    "revoked": false, "revoked_at": null,
                },
            ],
            "cursor": "fedcba9876543210",
        }));
        assert!(page.keys[0].revoked && !page.keys[1].revoked);
        assert_eq!(page.keys[1].label, None);
        round_trip::<KeyList>(&json!({"keys": [], "cursor": null}));
    }

    #[test]
    fn mint_token_defaults_are_the_workers() {
        let t: MintToken = round_trip(&json!({"namespace": "uploads"}));
        assert_eq!(t.path_prefix, "");
        assert!(t.types.is_empty());
        assert_eq!((t.max_size, t.ttl), (None, None));
        round_trip::<MintToken>(&json!({
            "namespace": "uploads", "path_prefix": "users/7/", "max_size": 20_000_000,
            "types": ["image/*", "application/pdf"], "ttl": 600,
        }));
        refused::<MintToken>(&json!({"namespace": "uploads", "prefix": "x/"}), "prefix");
    }

    #[test]
    fn token_minted() {
        // keys.rs mint
        let t: TokenMinted = round_trip(&json!({
            "token": "lkt_eyJ0IjoiZGVtbyJ9.c2ln", "expires_at": 1_764_000_600u64,
            "namespace": "demo", "path_prefix": "uploads/", "max_size": 104_857_600u64,
            "types": ["*/*"],
        }));
        assert_eq!(t.max_size, 104_857_600);
    }

    #[test]
    fn demo_echo() {
        let e: DemoEcho = round_trip(
            &json!({"fields": [["attachments", "locker://demo/uploads/a.png"], ["n", ""]]}),
        );
        assert_eq!(e.fields[1], ["n".to_owned(), String::new()]);
    }

    #[test]
    fn op_names() {
        for op in [Op::Read, Op::Write, Op::Delete, Op::Admin] {
            assert_eq!(serde_json::to_value(op).unwrap(), json!(op.as_str()));
        }
    }
}
