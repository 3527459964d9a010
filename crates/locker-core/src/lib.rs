//! Rules shared by the locker Worker and the browser module.
//!
//! Nothing in this crate performs I/O, reads a clock or looks at the environment: callers pass
//! in what they know, so every rule is testable with plain `cargo test` and behaves the same on
//! the host, in workerd and in the browser.

pub mod api;
pub mod backup;
pub mod bucket;
pub mod client;
pub mod credential;
pub mod gather;
pub mod hash;
pub mod health;
pub mod key;
pub mod location;
pub mod moves;
pub mod multipart;
pub mod prefix;
pub mod range;
pub mod reconcile;
pub mod refs;
pub mod request;
pub mod resume;
pub mod s3;
pub mod scope;
pub mod sign;
#[cfg(test)]
mod sigv4_reference;
pub mod upload_state;
pub mod validate;

pub use bucket::{BucketId, BucketIdentity};
pub use credential::{Credential, CredentialError};
pub use hash::{HashError, Sha256Hex};
pub use health::{Check, Health, HealthStatus};
pub use key::{ObjectKey, Tenant, TenantError};
pub use location::{Location, Place};
pub use range::{ByteRange, RangeError};
pub use refs::{LockerRef, LogicalPath, Namespace, RefError};
