//! Servers the commands run against, and the runs that use them, split by job:
//!
//! - [`process`]: process groups, the `__reap` watchdog that ends them when xtask dies, waiting
//!   for a port;
//! - [`wrangler`]: the Worker under `wrangler dev` (secrets, local D1 migrations, readiness);
//! - [`s3`]: the independent S3 server (s3s-fs) of the direct-upload tests;
//! - [`runs`]: [`staged`] environments and the e2e and bench runs built on them.
//!
//! The rest of xtask uses the names re-exported here, so a module can move without touching
//! its callers.

mod process;
mod runs;
mod s3;
mod wrangler;

pub(crate) use process::reap;
pub(crate) use runs::{bench, e2e};
pub(crate) use wrangler::{Log, Secrets, Server, DEMO_VAR};

// For runs outside this module (say a fuzz run in a staged environment, or a health probe),
// so that such a caller needs no path but `server::`.
#[allow(
    unused_imports,
    reason = "the facade's names, used by runs added beside e2e and bench"
)]
pub(crate) use {
    runs::staged,
    s3::{S3Server, E2E_S3_BUCKET},
    wrangler::healthz_status,
};
