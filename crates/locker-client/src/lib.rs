//! An async Rust client of the locker HTTP API, for servers and operators.
//!
//! ```no_run
//! # async fn demo() -> Result<(), locker_client::Error> {
//! use locker_client::{Client, PutOptions};
//! let client = Client::new("https://files.example.com", "lk_0123456789abcdef.c2VjcmV0")?;
//! let dest = "locker://corp/q3/deck.pdf".parse().map_err(|e| locker_client::Error::Invalid(format!("{e}")))?;
//! let done = client.put_file("deck.pdf".as_ref(), &dest, &PutOptions::new("application/pdf"), None).await?;
//! println!("{} ({} bytes sent)", done.locker_ref, done.bytes_sent);
//! # Ok(()) }
//! ```
//!
//! Every request and answer body is a type of [`locker_core::api`], the one definition of the
//! wire format. Files are hashed with native `sha2` (SHA extensions where the CPU has them) and
//! streamed from disk in constant memory; bytes already stored by the tenant are never sent.
//! Network errors, 408, 429 and 5xx are retried with exponential backoff and jitter (the rules
//! of [`locker_core::client`], shared with the browser module); other refusals come back at once
//! as [`Error::Refused`] with the API's `code`.

mod admin;
mod error;
mod files;
mod http;
mod upload;

pub use admin::{LogQuery, Preflight, ServerHealth};
pub use error::{Error, Result};
pub use files::Downloaded;
pub use http::Client;
pub use locker_core::api;
pub use locker_core::client::RetryPolicy;
pub use upload::{
    hash_file, hash_file_parts, FileDigest, Progress, PutOptions, Sent, Stored, Transferred,
};
