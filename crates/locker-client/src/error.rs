//! The client's one error type. The Worker's refusals keep their `code` and `message` as sent,
//! so a caller branches on the same codes the API documents.

use locker_core::client::Source;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Worker (or, on the s3 transport, the storage server) answered with a refusal.
    /// `code` is the Worker's `error.code` (`too_large`, `not_found`, ...) or, for a storage
    /// server, one of [`locker_core::client::code`] (`expired`, `storage_refused`, `timeout`).
    /// Retried first when the status says it may pass (408, 429, 5xx).
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
        source_kind: Source,
    },
    /// No answer: connecting, sending or receiving failed, after every retry.
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// Reading or writing a local file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A 2xx answer that is not the documented body: a proxy in between, or a Worker newer
    /// than this client in a way it cannot follow.
    #[error("unexpected answer from {what}: {message}")]
    BadAnswer { what: String, message: String },
    /// The Worker offered an upload plan this client does not implement (for example a
    /// multipart plan from a newer Worker); the reservation was released.
    #[error("the server offered an upload this client cannot follow: {0}")]
    UnsupportedPlan(String),
    /// An argument the caller gave is not usable (a bad ref, base URL or key).
    #[error("{0}")]
    Invalid(String),
    /// Downloaded bytes are not the ones the registry holds.
    #[error("downloaded bytes do not match: {0}")]
    Integrity(String),
}

impl Error {
    /// The API's code for a refusal, else a code of this client's own (`network`, `io`,
    /// `bad_answer`, `unsupported_plan`, `invalid_argument`, `integrity`).
    pub fn code(&self) -> &str {
        match self {
            Self::Refused { code, .. } => code,
            Self::Network(_) => locker_core::client::code::NETWORK,
            Self::Io { .. } => "io",
            Self::BadAnswer { .. } => locker_core::client::code::BAD_ANSWER,
            Self::UnsupportedPlan(_) => "unsupported_plan",
            Self::Invalid(_) => locker_core::client::code::INVALID,
            Self::Integrity(_) => "integrity",
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The message a person should see: for a refusal the server's own words.
    pub fn message(&self) -> String {
        match self {
            Self::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The client's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
