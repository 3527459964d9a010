//! The HTTP layer: one `reqwest` client, JSON in and out through the wire types, retries.

use std::fmt;
use std::time::Duration;

use locker_core::client::{classify, RetryPolicy};
use reqwest::{header, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::error::{Error, Result};

/// Which failures a request may be sent again after.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Replay {
    /// Sending it twice does what sending it once does (reads, deletes, reserve, complete):
    /// retried on every failure [`locker_core::client::retryable`] allows.
    Idempotent,
    /// Sending it twice would do it twice (a new key, a new token): retried only when the
    /// connection could not even be made, so the Worker cannot have seen it.
    Once,
}

/// A client of one locker Worker with one credential. Cheap to clone (the connection pool is
/// shared); `Debug` never shows the key.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    base: Url,
    key: String,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key", &"<hidden>")
            .field("retry", &self.retry)
            .finish()
    }
}

/// Connections that stay quiet this long are given up (and retried): a stalled server must not
/// hang a script forever. Long transfers are fine; only silence counts.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

impl Client {
    /// A client of the Worker at `base` (`https://files.example.com`), authenticating with
    /// `key` (an API key `lk_...`, the bootstrap admin key, or an upload token `lkt_...`).
    pub fn new(base: &str, key: &str) -> Result<Self> {
        let mut base =
            Url::parse(base).map_err(|e| Error::Invalid(format!("{base:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Invalid(format!(
                "{base} is not an http(s) URL of a locker server"
            )));
        }
        // Paths are appended segment by segment; a trailing empty segment would double a `/`.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        if key.is_empty() || key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Invalid(
                "the key is empty or has spaces or control characters".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("locker-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Network)?;
        Ok(Self {
            http,
            base,
            key: key.to_owned(),
            retry: RetryPolicy {
                retries: 5,
                base_ms: 250.0,
            },
        })
    }

    /// Replaces the retry policy (retries after the first attempt, first delay).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The Worker's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + the given path segments, each percent-encoded as one segment (a file path's
    /// `/`-separated parts are passed one by one, so they stay separators).
    pub(crate) fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut s) = url.path_segments_mut() {
            s.extend(segments);
        }
        url
    }

    /// Sends one request to the Worker with the key, retrying as `replay` allows; the answer's
    /// status, `Date` header and body.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        json: Option<Vec<u8>>,
        replay: Replay,
    ) -> Result<Answer> {
        let mut attempt = 1;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&self.key);
            if let Some(body) = &json {
                req = req
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let (status, failure) = match req.send().await {
                Ok(res) => match Answer::read(res).await {
                    Ok(answer) if answer.status.is_success() => return Ok(answer),
                    Ok(answer) => (Some(answer.status.as_u16()), answer.refusal()),
                    Err(e) => (None, Error::Network(e)),
                },
                Err(e) => {
                    let unsent = e.is_connect();
                    let failure = Error::Network(e);
                    if replay == Replay::Once && !unsent {
                        return Err(failure);
                    }
                    (None, failure)
                }
            };
            if replay == Replay::Once && status.is_some() {
                return Err(failure);
            }
            match self
                .retry
                .next_delay(attempt, status, failure.code(), fastrand::f64())
            {
                Some(ms) => {
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                    attempt += 1;
                }
                None => return Err(failure),
            }
        }
    }

    /// A JSON call: `body` encoded with serde, the 2xx answer decoded into `T`.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
        replay: Replay,
    ) -> Result<T> {
        let json = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Invalid(format!("cannot encode the request: {e}")))?;
        let what = format!("{method} {}", url.path());
        self.send(method, url, json, replay).await?.decode(&what)
    }
}

/// A whole answer, read.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) date: Option<String>,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    pub(crate) async fn read(res: Response) -> reqwest::Result<Self> {
        let status = res.status();
        let date = res
            .headers()
            .get(header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.bytes().await?;
        Ok(Self { status, date, body })
    }

    /// The refusal this non-2xx answer carries (the Worker's JSON error, a storage server's
    /// XML error, or anything else), as [`Error::Refused`].
    pub(crate) fn refusal(&self) -> Error {
        let r = classify(self.status.as_u16(), &String::from_utf8_lossy(&self.body));
        Error::Refused {
            status: self.status.as_u16(),
            code: r.code,
            message: r.message,
            source_kind: r.source,
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::BadAnswer {
            what: what.to_owned(),
            message: e.to_string(),
        })
    }
}
