//! `locker`: the locker API from a shell, for servers and operators.
//!
//! Exit codes: 0 everything done; 1 something failed (a refusal, the network, a file that could
//! not be read; with several files, the others were still done); 2 usage: bad arguments, a bad
//! ref, no or a bad profile, before anything was sent.

mod cli;
mod cmd;
mod out;
mod profile;

use std::process::ExitCode;

use clap::Parser;
use locker_client::Client;

use crate::cli::{Cli, Command};
use crate::out::Out;

/// Why a command did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fail {
    /// Nothing was attempted: arguments, refs or configuration are wrong.
    #[error("{0}")]
    Usage(String),
    /// The server or the network refused or failed.
    #[error(transparent)]
    Client(#[from] locker_client::Error),
    /// Some of several items failed; each was reported as it happened.
    #[error("{0}")]
    Partial(String),
    /// Anything else that went wrong while doing the work.
    #[error("{0}")]
    Failed(String),
}

/// The process's exit status, typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
}

impl Fail {
    fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) | Self::Client(locker_client::Error::Invalid(_)) => Exit::Usage,
            Self::Client(_) | Self::Partial(_) | Self::Failed(_) => Exit::Failed,
        }
    }

    fn code(&self) -> String {
        match self {
            Self::Usage(_) => "usage".into(),
            Self::Client(e) => e.code().to_owned(),
            Self::Partial(_) => "partial".into(),
            Self::Failed(_) => "failed".into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("locker: cannot start: {e}");
            return ExitCode::from(Exit::Failed as u8);
        }
    };
    let exit = match runtime.block_on(run(cli, &out)) {
        Ok(()) => Exit::Ok,
        Err(fail) => {
            out.fail(
                &fail.code(),
                &fail.to_string(),
                matches!(fail, Fail::Partial(_)),
            );
            fail.exit()
        }
    };
    ExitCode::from(exit as u8)
}

/// A client for the configured server.
pub(crate) fn connect(profile: Option<&str>) -> Result<Client, Fail> {
    let server = profile::resolve(profile)?;
    Client::new(&server.url, &server.key)
        .map_err(|e| Fail::Usage(format!("{} ({}): {}", e.message(), server.from, server.url)))
}

async fn run(cli: Cli, out: &Out) -> Result<(), Fail> {
    let profile = cli.profile.as_deref();
    match cli.command {
        Command::Profile(c) => cmd::profile::run(c, out),
        Command::Put(args) => cmd::put::run(&connect(profile)?, args, out).await,
        Command::Get { file, dest } => cmd::files::get(&connect(profile)?, &file, dest, out).await,
        Command::Ls { location, long } => {
            cmd::files::ls(&connect(profile)?, &location, long, out).await
        }
        Command::Rm { files } => cmd::files::rm(&connect(profile)?, &files, out).await,
        Command::Stat { file } => cmd::files::stat(&connect(profile)?, &file, out).await,
        Command::Url { file, expires } => {
            cmd::files::url(&connect(profile)?, &file, expires, out).await
        }
        Command::Keys(c) => cmd::admin::keys(&connect(profile)?, c, out).await,
        Command::Token(args) => cmd::admin::token(&connect(profile)?, args, out).await,
        Command::Buckets(c) => cmd::admin::buckets(&connect(profile)?, c, out).await,
        Command::Routes(c) => cmd::admin::routes(&connect(profile)?, c, out).await,
        Command::Logs(args) => cmd::logs::run(&connect(profile)?, args, out).await,
        Command::Stats => cmd::admin::stats(&connect(profile)?, out).await,
        Command::Doctor { origin } => {
            cmd::doctor::run(&connect(profile)?, origin.as_deref(), out).await
        }
    }
}
