//! What a credential may do, and the rule that a credential only hands out what it holds.
//!
//! A tenant admin key creates API keys, and any key with write access mints browser upload
//! tokens. Whatever it creates must be a subset of itself in every dimension: namespaces, ops,
//! size limit, content types and expiry. Otherwise a key limited to one namespace could mint a
//! `*` key and escape its own limits. The bootstrap admin is unlimited and is not checked here.

use serde::{Deserialize, Serialize};

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Read,
    Write,
    Delete,
    /// Manage the tenant's keys and routes and read its access log and stats.
    Admin,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
            Op::Admin => "admin",
        }
    }
}

/// An API key's scopes, stored as JSON in `api_keys.scopes` (its expiry is a column).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scopes {
    /// Namespaces the key may touch; `["*"]` for all.
    pub namespaces: Vec<String>,
    pub ops: Vec<Op>,
    /// Largest upload, bytes (`None`: the Worker's own limits only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Allowed content types (`None`: the deployment's default allow-list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}

/// One credential in every dimension the subset rule compares.
#[derive(Clone, Copy, Debug)]
pub struct Grant<'a> {
    /// Namespace names or `*`.
    pub namespaces: &'a [String],
    pub ops: &'a [Op],
    /// `None`: no size limit of its own.
    pub max_size: Option<u64>,
    /// Type patterns (`type/subtype`, `type/*`, `*/*`); `None`: the deployment's default list.
    pub types: Option<&'a [String]>,
    /// Unix seconds after which it stops working; `None`: never.
    pub expires_at: Option<u64>,
}

impl<'a> Grant<'a> {
    /// The grant of stored scopes with an expiry.
    pub fn of(scopes: &'a Scopes, expires_at: Option<u64>) -> Self {
        Self {
            namespaces: &scopes.namespaces,
            ops: &scopes.ops,
            max_size: scopes.max_size,
            types: scopes.types.as_deref(),
            expires_at,
        }
    }
}

/// Why a credential may not be created by its creator. Messages are shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A namespace (or `*`) the creator has no access to.
    #[error("namespace '{0}' is outside the creating key's namespaces")]
    Namespace(String),
    /// An op the creator does not have.
    #[error("op '{0}' is not one of the creating key's ops")]
    Op(&'static str),
    /// No or a larger size limit than the creator's.
    #[error("max_size must be given and at most {0} bytes, the creating key's limit")]
    MaxSize(u64),
    /// A type pattern the creator's types do not cover.
    #[error("type '{0}' is outside the creating key's types")]
    Type(String),
    /// No types (the deployment default) although the creator's types are limited.
    #[error("types must be given: the creating key's types are limited")]
    TypesRequired,
    /// No or a later expiry than the creator's.
    #[error(
        "the new credential must expire no later than the creating key (at {0}, Unix seconds)"
    )]
    Expiry(u64),
}

/// Whether namespace `ns` (or `*`) is within `allowed`. `*` is only within `*`.
pub fn namespace_within(ns: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| a == "*" || a == ns)
}

/// Whether every content type `pattern` matches is matched by some entry of `allowed`:
/// `*/*` covers everything, `image/*` covers `image/*` and `image/png`, an exact type only
/// itself.
pub fn type_within(pattern: &str, allowed: &[String]) -> bool {
    let main_type = pattern.split_once('/').map(|(t, _)| t);
    allowed.iter().any(|a| {
        a == "*/*"
            || a == pattern
            || a.strip_suffix("/*")
                .is_some_and(|t| t != "*" && main_type == Some(t))
    })
}

/// Checks that `child` is a subset of `parent` in every dimension. `default_types` is what a
/// grant without types allows (the deployment's allow-list): a child may leave its types
/// unset only when its parent does too, so both follow that list.
pub fn within(child: &Grant, parent: &Grant, default_types: &[String]) -> Result<(), ScopeError> {
    if let Some(ns) = child
        .namespaces
        .iter()
        .find(|ns| !namespace_within(ns, parent.namespaces))
    {
        return Err(ScopeError::Namespace(ns.clone()));
    }
    if let Some(op) = child.ops.iter().find(|op| !parent.ops.contains(op)) {
        return Err(ScopeError::Op(op.as_str()));
    }
    if let Some(limit) = parent.max_size {
        if child.max_size.is_none_or(|m| m > limit) {
            return Err(ScopeError::MaxSize(limit));
        }
    }
    match (child.types, parent.types) {
        (None, None) => {}
        (None, Some(_)) => return Err(ScopeError::TypesRequired),
        (Some(mine), theirs) => {
            let allowed = theirs.unwrap_or(default_types);
            if let Some(t) = mine.iter().find(|t| !type_within(t, allowed)) {
                return Err(ScopeError::Type(t.clone()));
            }
        }
    }
    if let Some(limit) = parent.expires_at {
        if child.expires_at.is_none_or(|e| e > limit) {
            return Err(ScopeError::Expiry(limit));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    struct Owned {
        namespaces: Vec<String>,
        ops: Vec<Op>,
        max_size: Option<u64>,
        types: Option<Vec<String>>,
        expires_at: Option<u64>,
    }

    impl Owned {
        /// Everything, no limits (the widest grant a tenant key can have).
        fn all() -> Self {
            Self {
                namespaces: v(&["*"]),
                ops: vec![Op::Read, Op::Write, Op::Delete, Op::Admin],
                max_size: None,
                types: None,
                expires_at: None,
            }
        }
        fn grant(&self) -> Grant<'_> {
            Grant {
                namespaces: &self.namespaces,
                ops: &self.ops,
                max_size: self.max_size,
                types: self.types.as_deref(),
                expires_at: self.expires_at,
            }
        }
    }

    fn check(child: &Owned, parent: &Owned) -> Result<(), ScopeError> {
        within(
            &child.grant(),
            &parent.grant(),
            &v(&["image/*", "text/plain"]),
        )
    }

    #[test]
    fn an_unlimited_parent_allows_anything() {
        let parent = Owned::all();
        assert_eq!(check(&Owned::all(), &parent), Ok(()));
        let narrow = Owned {
            namespaces: v(&["a"]),
            ops: vec![Op::Read],
            max_size: Some(10),
            types: Some(v(&["*/*"])),
            expires_at: Some(5),
        };
        // `*/*` is outside the default list, but an unlimited parent's types are that list.
        assert_eq!(check(&narrow, &parent), Err(ScopeError::Type("*/*".into())));
        let narrow = Owned {
            types: Some(v(&["image/png", "image/*", "text/plain"])),
            ..narrow
        };
        assert_eq!(check(&narrow, &parent), Ok(()));
    }

    #[test]
    fn namespaces() {
        let parent = Owned {
            namespaces: v(&["a", "b"]),
            ..Owned::all()
        };
        for ok in [&["a"][..], &["b"], &["a", "b"]] {
            let child = Owned {
                namespaces: v(ok),
                ..Owned::all()
            };
            assert_eq!(check(&child, &parent), Ok(()), "{ok:?}");
        }
        for (bad, first) in [(&["*"][..], "*"), (&["c"], "c"), (&["a", "c"], "c")] {
            let child = Owned {
                namespaces: v(bad),
                ..Owned::all()
            };
            assert_eq!(
                check(&child, &parent),
                Err(ScopeError::Namespace(first.into())),
                "{bad:?}"
            );
        }
        assert!(namespace_within("*", &v(&["*"])));
        assert!(namespace_within("x", &v(&["*"])));
        assert!(!namespace_within("*", &v(&["x"])));
        assert!(!namespace_within("x", &[]));
    }

    #[test]
    fn ops() {
        let parent = Owned {
            ops: vec![Op::Write, Op::Admin],
            ..Owned::all()
        };
        let ok = Owned {
            ops: vec![Op::Write],
            ..Owned::all()
        };
        assert_eq!(check(&ok, &parent), Ok(()));
        for (op, name) in [(Op::Read, "read"), (Op::Delete, "delete")] {
            let child = Owned {
                ops: vec![Op::Write, op],
                ..Owned::all()
            };
            assert_eq!(check(&child, &parent), Err(ScopeError::Op(name)));
        }
    }

    #[test]
    fn max_size_none_is_unlimited_only_under_an_unlimited_parent() {
        let parent = Owned {
            max_size: Some(1000),
            ..Owned::all()
        };
        for (child, ok) in [
            (Some(0), true),
            (Some(1000), true),
            (Some(1001), false),
            (None, false),
        ] {
            let c = Owned {
                max_size: child,
                ..Owned::all()
            };
            let expected = if ok {
                Ok(())
            } else {
                Err(ScopeError::MaxSize(1000))
            };
            assert_eq!(check(&c, &parent), expected, "{child:?}");
        }
        let c = Owned {
            max_size: None,
            ..Owned::all()
        };
        assert_eq!(check(&c, &Owned::all()), Ok(()));
    }

    #[test]
    fn types_with_wildcards() {
        let parent = Owned {
            types: Some(v(&["image/*", "application/pdf"])),
            ..Owned::all()
        };
        let cases: &[(&[&str], Result<(), ScopeError>)] = &[
            (&["image/png"], Ok(())),
            (&["image/*"], Ok(())),
            (&["image/*", "image/png", "application/pdf"], Ok(())),
            (&[], Ok(())),
            (&["*/*"], Err(ScopeError::Type("*/*".into()))),
            (
                &["application/*"],
                Err(ScopeError::Type("application/*".into())),
            ),
            (
                &["application/zip"],
                Err(ScopeError::Type("application/zip".into())),
            ),
            (&["text/plain"], Err(ScopeError::Type("text/plain".into()))),
            // A prefix of a type is not that type.
            (&["imagex/png"], Err(ScopeError::Type("imagex/png".into()))),
        ];
        for (types, expected) in cases {
            let c = Owned {
                types: Some(v(types)),
                ..Owned::all()
            };
            assert_eq!(&check(&c, &parent), expected, "{types:?}");
        }
        let unset = Owned {
            types: None,
            ..Owned::all()
        };
        assert_eq!(check(&unset, &parent), Err(ScopeError::TypesRequired));

        let any = Owned {
            types: Some(v(&["*/*"])),
            ..Owned::all()
        };
        for t in ["*/*", "video/*", "x/y"] {
            let c = Owned {
                types: Some(v(&[t])),
                ..Owned::all()
            };
            assert_eq!(check(&c, &any), Ok(()), "{t}");
        }
        assert!(!type_within("*/*", &v(&["image/*"])));
        assert!(!type_within("image/png", &[]));
        // `*/x` is no pattern a key can hold; it is never covered by `type/*` entries.
        assert!(!type_within("*/png", &v(&["image/*"])));
    }

    #[test]
    fn expiry() {
        let parent = Owned {
            expires_at: Some(1000),
            ..Owned::all()
        };
        for (child, ok) in [
            (Some(1), true),
            (Some(1000), true),
            (Some(1001), false),
            (None, false),
        ] {
            let c = Owned {
                expires_at: child,
                ..Owned::all()
            };
            let expected = if ok {
                Ok(())
            } else {
                Err(ScopeError::Expiry(1000))
            };
            assert_eq!(check(&c, &parent), expected, "{child:?}");
        }
        let c = Owned {
            expires_at: Some(u64::MAX),
            ..Owned::all()
        };
        assert_eq!(check(&c, &Owned::all()), Ok(()));
    }

    #[test]
    fn the_issue_case_a_namespace_admin_cannot_mint_a_wider_key() {
        let admin_of_a = Owned {
            namespaces: v(&["a"]),
            ops: vec![Op::Write, Op::Admin],
            max_size: Some(1_000_000),
            types: Some(v(&["image/*"])),
            expires_at: Some(10_000),
        };
        let wide = Owned::all();
        assert_eq!(
            check(&wide, &admin_of_a),
            Err(ScopeError::Namespace("*".into()))
        );
        let same = Owned {
            namespaces: v(&["a"]),
            ops: vec![Op::Write, Op::Admin],
            max_size: Some(1_000_000),
            types: Some(v(&["image/*"])),
            expires_at: Some(10_000),
        };
        assert_eq!(check(&same, &admin_of_a), Ok(()));
    }

    #[test]
    fn scopes_keep_their_json_shape() {
        let s: Scopes =
            serde_json::from_str(r#"{"namespaces":["*"],"ops":["read","admin"]}"#).unwrap();
        assert_eq!(s.ops, vec![Op::Read, Op::Admin]);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"namespaces":["*"],"ops":["read","admin"]}"#
        );
        let g = Grant::of(&s, Some(3));
        assert_eq!(g.expires_at, Some(3));
        assert!(g.types.is_none());
    }
}
