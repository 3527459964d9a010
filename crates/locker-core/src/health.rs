//! The answer of `GET /healthz`, shared so the Worker writes and the browser reads one type.

use serde::{Deserialize, Serialize};

/// One dependency's check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Whether the dependency answered as expected.
    pub ok: bool,
    /// What was checked, or why it failed.
    pub detail: String,
    /// Round-trip time in milliseconds, as measured by the Worker.
    pub ms: u64,
}

/// The overall verdict of a health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every check passed (HTTP 200).
    Ok,
    /// At least one check failed (HTTP 503).
    Degraded,
}

impl HealthStatus {
    /// The HTTP status the answer carries.
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Degraded => 503,
        }
    }
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when every check passed, `degraded` otherwise.
    pub status: HealthStatus,
    /// The Worker's version (its crate version).
    pub version: String,
    /// Which server answered (the colo, or the configured name).
    pub server: String,
    /// The registry (D1): a query round-trip.
    pub d1: Check,
    /// Storage (R2): the binding answered a listing.
    pub r2: Check,
}

impl Health {
    /// Builds the answer; `status` follows from the checks.
    pub fn new(version: &str, server: &str, d1: Check, r2: Check) -> Self {
        let status = if d1.ok && r2.ok {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        };
        Self {
            status,
            version: version.to_owned(),
            server: server.to_owned(),
            d1,
            r2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ok: bool) -> Check {
        Check {
            ok,
            detail: String::new(),
            ms: 1,
        }
    }

    #[test]
    fn status_follows_checks() {
        assert_eq!(
            Health::new("1", "s", check(true), check(true)).status,
            HealthStatus::Ok
        );
        assert_eq!(
            Health::new("1", "s", check(false), check(true)).status,
            HealthStatus::Degraded
        );
        assert_eq!(
            Health::new("1", "s", check(true), check(false)).status,
            HealthStatus::Degraded
        );
    }
}
