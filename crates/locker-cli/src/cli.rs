//! The command line, as clap types: what a person may type, checked before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// locker from a shell: put, get, list and delete files, and run a locker server.
///
/// The server and key come from --profile (a named profile in the config file), else from
/// LOCKER_URL and LOCKER_KEY, else from the config file's default profile.
#[derive(Debug, Parser)]
#[command(name = "locker", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// A named profile of the config file (`locker profile ls`).
    #[arg(long, global = true, env = "LOCKER_PROFILE")]
    pub(crate) profile: Option<String>,
    /// One JSON document on stdout, for scripts (no progress, no decoration).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload files and directories (recursively) to locker://ns/prefix/ or one locker://ns/path.
    ///
    /// A directory's contents go below the prefix by their relative paths (as `aws s3 cp
    /// --recursive`); a file goes to prefix + its name. Bytes the tenant stored before are not
    /// sent again (shown as "dedup").
    Put(PutArgs),
    /// Download a file (DEST: a file, a directory, or - for stdout; default: its name here).
    Get {
        /// locker://ns/path
        file: String,
        dest: Option<PathBuf>,
    },
    /// List files below locker://ns/prefix/.
    Ls {
        location: String,
        /// Long format: size, time, digest, ref.
        #[arg(short, long)]
        long: bool,
    },
    /// Delete files.
    Rm {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Show a file's metadata.
    Stat { file: String },
    /// Print a signed download URL.
    Url {
        file: String,
        /// Lifetime: seconds or 30s, 15m, 1h, 7d (at most 7 days).
        #[arg(long, default_value = "1h", value_parser = duration)]
        expires: u64,
    },
    /// API keys (admin).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint a browser upload token.
    Token(TokenArgs),
    /// Storage buckets (admin).
    #[command(subcommand)]
    Buckets(BucketsCommand),
    /// Which bucket a namespace's new uploads go to (admin).
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// The access log, newest first (admin).
    Logs(LogsArgs),
    /// Counts and integrity checks (admin).
    Stats,
    /// Check the server: health, integrity counts, clock skew, CORS of s3 buckets.
    Doctor {
        /// The page origin whose uploads straight to s3 buckets must pass CORS.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Named profiles in the config file (the key is never printed).
    #[command(subcommand)]
    Profile(ProfileCommand),
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// Files and directories, then the destination.
    #[arg(required = true, num_args = 2.., value_name = "PATH... DEST")]
    pub(crate) args: Vec<PathBuf>,
    /// Files transferred at once.
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) jobs: u16,
    /// The MIME type of every file (default: guessed from each name).
    #[arg(long)]
    pub(crate) content_type: Option<String>,
    /// Lifetime of each signed upload URL (1s to 1h).
    #[arg(long, value_parser = duration)]
    pub(crate) url_expires: Option<u64>,
    /// Files of this many bytes or more are sent in parts, smaller ones in one request.
    /// Without it the Worker plans: parts from 64 MiB (its default threshold), except into an
    /// s3 bucket with verify=checksum, where files up to 5 GB are one request (no read-back).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) multipart_threshold: Option<u64>,
    /// Parts of one file in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) part_concurrency: u16,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; prints it once.
    Create {
        /// The tenant (bootstrap admin only; default the creating key's).
        #[arg(long)]
        tenant: Option<String>,
        /// Namespaces, comma-separated, or *.
        #[arg(long = "ns", value_delimiter = ',', required = true)]
        namespaces: Vec<String>,
        /// Operations, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        ops: Vec<OpArg>,
        #[arg(long)]
        max_size: Option<u64>,
        /// Content types, comma-separated (image/*, application/pdf).
        #[arg(long, value_delimiter = ',')]
        types: Option<Vec<String>>,
        #[arg(long)]
        label: Option<String>,
        /// Lifetime (1h, 30d, ...).
        #[arg(long, value_parser = duration)]
        expires: Option<u64>,
    },
    /// Revoke a key by id (the part after lk_ and before the dot).
    Revoke { id: String },
    /// List the keys this key may see (revoked and expired ones marked).
    Ls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OpArg {
    Read,
    Write,
    Delete,
    Admin,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The namespace the token writes to.
    #[arg(long = "ns")]
    pub(crate) namespace: String,
    /// The path prefix it may write below (ending in /).
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    #[arg(long)]
    pub(crate) max_size: Option<u64>,
    #[arg(long, value_delimiter = ',')]
    pub(crate) types: Vec<String>,
    /// Lifetime (at most 1h).
    #[arg(long, value_parser = duration)]
    pub(crate) ttl: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BucketsCommand {
    /// Register a bucket (deployment admin).
    Add {
        name: String,
        #[arg(long, value_enum)]
        provider: ProviderArg,
        #[arg(long, value_enum)]
        transport: Option<TransportArg>,
        #[arg(long)]
        binding: Option<String>,
        #[arg(long)]
        account_id: Option<String>,
        #[arg(long)]
        jurisdiction: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Path-style URLs (endpoint/bucket/key); default true for s3 endpoints.
        #[arg(long)]
        path_style: Option<bool>,
        /// How complete verifies a single PUT into an s3-transport bucket: read_back (the
        /// default: read the object back and hash it) or checksum (take the SHA-256 the server
        /// reports, only for servers that refuse a PUT with the wrong checksum and honour
        /// If-None-Match atomically, such as AWS S3 and R2).
        #[arg(long, value_enum)]
        verify: Option<VerifyArg>,
    },
    Ls,
    Activate {
        id: String,
    },
    Deactivate {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProviderArg {
    R2,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportArg {
    Worker,
    S3,
}

/// The API's names (`read_back`, `checksum`), not clap's kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerifyArg {
    #[value(name = "read_back")]
    ReadBack,
    Checksum,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoutesCommand {
    /// Send NAMESPACE's new uploads (* for the tenant's default) to BUCKET_ID.
    Set {
        namespace: String,
        bucket_id: String,
    },
    Ls,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// From: a duration ago (15m, 2h), an RFC 3339 time, or milliseconds since the epoch.
    #[arg(long, value_parser = time_arg)]
    pub(crate) since: Option<TimeArg>,
    /// Until, as --since.
    #[arg(long, value_parser = time_arg)]
    pub(crate) until: Option<TimeArg>,
    /// Only this operation (reserve, upload, dedup, complete, denied, ...).
    #[arg(long)]
    pub(crate) op: Option<String>,
    /// At most this many rows (without --follow).
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
    /// Keep printing new rows as they come (oldest first), until interrupted.
    #[arg(short, long)]
    pub(crate) follow: bool,
}

/// A point in time on the command line, resolved against the clock when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// This many seconds before now.
    Ago(u64),
    /// Milliseconds since the epoch.
    At(u64),
}

impl TimeArg {
    pub(crate) fn to_ms(self, now_ms: u64) -> u64 {
        match self {
            Self::Ago(s) => now_ms.saturating_sub(s.saturating_mul(1000)),
            Self::At(ms) => ms,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// Save a profile; the key is read from LOCKER_KEY or, without it, from stdin.
    Set {
        name: String,
        #[arg(long)]
        url: String,
        /// Make it the profile used when none is named.
        #[arg(long)]
        default: bool,
    },
    /// List profiles (names and URLs).
    Ls,
    /// Remove a profile.
    Rm { name: String },
}

fn duration(s: &str) -> Result<u64, String> {
    locker_core::location::parse_duration_s(s).map_err(|e| e.to_string())
}

fn time_arg(s: &str) -> Result<TimeArg, String> {
    if let Ok(ago) = locker_core::location::parse_duration_s(s) {
        // A bare number is a time, not seconds ago: 13 digits of milliseconds look alike.
        if s.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Ok(TimeArg::Ago(ago));
        }
    }
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(TimeArg::At(ms));
    }
    s.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| u64::try_from(t.as_millisecond()).ok())
        .map(TimeArg::At)
        .ok_or_else(|| {
            format!("{s:?} is not a time: use 15m, 2h, 2026-01-31T12:00:00Z or milliseconds")
        })
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("locker").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn put_takes_sources_then_destination() {
        let cli = parse(&["put", "-j", "16", "a.txt", "dir", "locker://corp/x/"]).unwrap();
        let Command::Put(put) = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(put.jobs, 16);
        assert_eq!(put.args.len(), 3);
        assert_eq!(put.content_type, None);
        // One argument is no upload; -j 0 would wait forever.
        assert_eq!(
            parse(&["put", "locker://corp/"]).unwrap_err().kind(),
            ErrorKind::TooFewValues
        );
        assert_eq!(
            parse(&["put", "-j", "0", "a", "locker://corp/"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&["ls", "locker://corp/", "--json", "--profile", "prod", "-l"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.profile.as_deref(), Some("prod"));
        assert!(matches!(cli.command, Command::Ls { long: true, .. }));
    }

    #[test]
    fn durations_and_times() {
        let cli = parse(&["url", "locker://corp/a", "--expires", "15m"]).unwrap();
        assert!(matches!(cli.command, Command::Url { expires: 900, .. }));
        let cli = parse(&["url", "locker://corp/a"]).unwrap();
        assert!(matches!(cli.command, Command::Url { expires: 3600, .. }));
        assert_eq!(
            parse(&["url", "locker://corp/a", "--expires", "soon"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(time_arg("15m"), Ok(TimeArg::Ago(900)));
        assert_eq!(
            time_arg("1764000000123"),
            Ok(TimeArg::At(1_764_000_000_123))
        );
        assert_eq!(
            time_arg("2026-01-31T12:00:00Z"),
            Ok(TimeArg::At(1_769_860_800_000))
        );
        assert!(time_arg("yesterday").is_err());
        assert_eq!(TimeArg::Ago(60).to_ms(100_000), 40_000);
        assert_eq!(TimeArg::Ago(600).to_ms(100_000), 0);
    }

    #[test]
    fn admin_commands() {
        let cli = parse(&[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--ns",
            "corp,deck",
            "--ops",
            "read,write",
            "--expires",
            "30d",
        ])
        .unwrap();
        let Command::Keys(KeysCommand::Create {
            namespaces,
            ops,
            expires,
            ..
        }) = cli.command
        else {
            panic!("{cli:?}")
        };
        assert_eq!(namespaces, ["corp", "deck"]);
        assert_eq!(ops, [OpArg::Read, OpArg::Write]);
        assert_eq!(expires, Some(30 * 86_400));
        assert_eq!(
            parse(&["keys", "create", "--ns", "*", "--ops", "root"])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidValue
        );
        assert!(parse(&["buckets", "add", "x", "--provider", "gcs"]).is_err());
        let cli = parse(&[
            "buckets",
            "add",
            "x",
            "--provider",
            "s3",
            "--verify",
            "checksum",
        ]);
        let Ok(Cli {
            command: Command::Buckets(BucketsCommand::Add { verify, .. }),
            ..
        }) = cli
        else {
            panic!("{cli:?}")
        };
        assert_eq!(verify, Some(VerifyArg::Checksum));
        assert!(parse(&[
            "buckets",
            "add",
            "x",
            "--provider",
            "s3",
            "--verify",
            "read_back"
        ])
        .is_ok());
        assert!(parse(&[
            "buckets",
            "add",
            "x",
            "--provider",
            "s3",
            "--verify",
            "trust"
        ])
        .is_err());
        assert!(parse(&["routes", "set", "eu", "abc"]).is_ok());
        let cli = parse(&["logs", "--since", "2h", "--op", "dedup", "-f"]).unwrap();
        let Command::Logs(logs) = cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(
            (logs.since, logs.op.as_deref(), logs.follow),
            (Some(TimeArg::Ago(7200)), Some("dedup"), true)
        );
    }

    #[test]
    fn unknown_commands_and_flags_are_usage_errors() {
        assert_eq!(
            parse(&["push", "a"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        assert_eq!(
            parse(&["ls", "locker://a/", "--colour"])
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownArgument
        );
        // clap's usage errors exit 2, the code the CLI documents for them.
        assert_eq!(parse(&["rm"]).unwrap_err().exit_code(), 2);
    }
}
