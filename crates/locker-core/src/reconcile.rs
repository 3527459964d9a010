//! The reconciler's rules: when a failed deletion is tried again, which object keys are blobs'
//! and when an unclaimed object is old enough to delete.

use crate::{Sha256Hex, Tenant};

/// The first retry of a failed deletion is due at once (the next scheduled run); each later
/// one waits twice as long as the one before, from 15 minutes up to a day.
pub fn retry_at(now_ms: u64, attempts: u64) -> u64 {
    const STEP_MS: u64 = 15 * 60 * 1000;
    const MAX_MS: u64 = 24 * 60 * 60 * 1000;
    if attempts <= 1 {
        return now_ms;
    }
    let shift = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    now_ms.saturating_add(STEP_MS.saturating_mul(1 << shift).min(MAX_MS))
}

/// The tenant and digest of a blob's object key (`t/{tenant}/sha256/{sha256}`, as
/// [`crate::ObjectKey::for_blob`] builds it); `None` for any other key, which the reconciler
/// leaves alone.
pub fn parse_blob_key(key: &str) -> Option<(Tenant, Sha256Hex)> {
    let rest = key.strip_prefix("t/")?;
    let (tenant, sha) = rest.split_once("/sha256/")?;
    let tenant = Tenant::parse(tenant).ok()?;
    let sha = Sha256Hex::parse(sha).ok()?;
    (crate::ObjectKey::for_blob(&tenant, &sha).as_str() == key).then_some((tenant, sha))
}

/// Whether an object nothing claims, stored at `uploaded_ms`, is past its grace period: an
/// upload in flight has a pending reservation (a claim), and the grace covers the moment
/// between a PUT and the registry noticing it.
pub fn orphan_due(uploaded_ms: u64, now_ms: u64, grace_s: u64) -> bool {
    now_ms.saturating_sub(uploaded_ms) > grace_s.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * 1000;

    #[test]
    fn retries_back_off_to_a_day() {
        assert_eq!(retry_at(1000, 1), 1000);
        assert_eq!(retry_at(0, 2), 15 * MIN);
        assert_eq!(retry_at(0, 3), 30 * MIN);
        assert_eq!(retry_at(0, 4), 60 * MIN);
        assert_eq!(retry_at(0, 20), 24 * 60 * MIN);
        assert_eq!(retry_at(0, u64::MAX), 24 * 60 * MIN);
        assert_eq!(retry_at(u64::MAX, 5), u64::MAX);
    }

    #[test]
    fn blob_keys() {
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let (tenant, digest) = parse_blob_key(&format!("t/acme/sha256/{sha}")).unwrap();
        assert_eq!(
            (tenant.as_str(), digest.to_string().as_str()),
            ("acme", sha)
        );
        for other in [
            "backups/20261202T031700123Z/manifest.json".to_owned(),
            format!("t/acme/sha256/{sha}/x"),
            format!("t/ACME/sha256/{sha}"),
            "t/acme/sha256/xyz".to_owned(),
            format!("x/acme/sha256/{sha}"),
        ] {
            assert!(parse_blob_key(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn grace() {
        assert!(!orphan_due(1000, 1000 + 5000, 5));
        assert!(orphan_due(1000, 1000 + 5001, 5));
        assert!(
            !orphan_due(10_000, 5000, 0),
            "a clock behind the object is no age"
        );
    }
}
