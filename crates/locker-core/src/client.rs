//! Rules of the browser module (locker-web) that need no browser: what an upload token answer
//! must look like, which failures are worth another attempt and how long to wait before it, and
//! what a refusal from the Worker or from a storage server means.
//!
//! The module calls these with what it observed (status, body text, `Date.now()`,
//! `Math.random()`); nothing here reads a clock or draws a random number. The Worker's JSON is
//! decoded with serde into the wire types of [`crate::api`], as everywhere else; an S3 XML error
//! is read by plain string search (an XML library would be paid for in the module's weight).

use serde::Deserialize;

use crate::api::ErrorBody;

/// Codes the module itself produces; every other code is the Worker's own `error.code`.
pub mod code {
    /// The caller cancelled (its `AbortSignal`).
    pub const ABORTED: &str = "aborted";
    /// No answer: the connection failed, or the transfer stalled. Retried.
    pub const NETWORK: &str = "network";
    /// The storage server gave up waiting for the body (S3 `RequestTimeout`). Retried.
    pub const TIMEOUT: &str = "timeout";
    /// An option or argument the caller gave is not usable.
    pub const INVALID: &str = "invalid_argument";
    /// Larger than the client-side `maxSize`.
    pub const TOO_LARGE: &str = "too_large";
    /// Not in the client-side `accept` list, or not a MIME type.
    pub const TYPE_NOT_ALLOWED: &str = "type_not_allowed";
    /// An answer that is neither the expected one nor a refusal we can read.
    pub const BAD_ANSWER: &str = "bad_answer";
    /// Reading or hashing the file failed.
    pub const HASH_FAILED: &str = "hash_failed";
    /// `getToken()` threw or rejected.
    pub const TOKEN_FAILED: &str = "token_failed";
    /// A signed URL or a token ran out: the same code the Worker uses, also for a storage
    /// server's answer to an expired presigned URL.
    pub const EXPIRED: &str = "expired";
    /// A storage server refused a transfer for a reason other than expiry (its S3 code and
    /// message are in the error's message).
    pub const STORAGE_REFUSED: &str = "storage_refused";
}

/// A cached token is renewed this long before the `expires_at` its answer gave.
pub const TOKEN_MARGIN_MS: f64 = 30_000.0;

/// Retry delays never grow beyond this.
pub const MAX_RETRY_DELAY_MS: f64 = 15_000.0;

/// What a refused request came to: a code (the Worker's, or one of [`code`]) and a message
/// fit to show a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable reason.
    pub message: String,
    /// Who said it.
    pub source: Source,
}

/// Who refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The locker Worker: its JSON `{"error": {"code", "message"}}`, on the API and on the
    /// worker transport's data plane.
    Worker,
    /// An S3-compatible storage server (the s3 transport): an XML `<Error><Code>...`.
    Storage,
    /// Anything else: a proxy's HTML page, an empty body.
    Unknown,
}

/// Reads a non-2xx answer: the Worker's JSON error ([`ErrorBody`]), a storage server's XML
/// error, or anything else.
///
/// A storage server's XML error keeps its own words in the message; an expired presigned URL
/// becomes [`code::EXPIRED`] whatever the status, so both transports renew a reservation
/// alike: S3 and s3s-fs answer `AccessDenied` / `Request has expired` with 403.
pub fn classify(status: u16, body: &str) -> Refusal {
    if let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(body) {
        return Refusal {
            code: error.code,
            message: error.message,
            source: Source::Worker,
        };
    }
    if let Some((s3_code, s3_message)) = s3_error(body) {
        let code = if s3_expired(&s3_code, &s3_message) {
            code::EXPIRED
        } else if s3_code == "RequestTimeout" {
            code::TIMEOUT
        } else {
            code::STORAGE_REFUSED
        };
        let message = if s3_message.is_empty() {
            format!("the storage server refused the transfer ({s3_code})")
        } else {
            format!("the storage server refused the transfer ({s3_code}: {s3_message})")
        };
        return Refusal {
            code: code.to_owned(),
            message,
            source: Source::Storage,
        };
    }
    Refusal {
        code: code::BAD_ANSWER.to_owned(),
        message: format!("the server answered HTTP {status}"),
        source: Source::Unknown,
    }
}

/// The `Code` and `Message` of an S3 error document (`<Error><Code>..</Code><Message>..`), the
/// predefined XML entities decoded. `None` when `body` is not one or has no code.
pub fn s3_error(body: &str) -> Option<(String, String)> {
    // `get` rather than indexing throughout: no panic path (and its formatting code) in the
    // browser module, though the offsets are always on character boundaries.
    let error = body.get(find(body, "<Error>")?..)?;
    let element = |open: &str, close: &str| -> Option<String> {
        let inner = error.get(find(error, open)? + open.len()..)?;
        Some(unescape_xml(inner.get(..find(inner, close)?)?.trim()))
    };
    let code = element("<Code>", "</Code>").filter(|c| !c.is_empty())?;
    Some((code, element("<Message>", "</Message>").unwrap_or_default()))
}

/// Where `needle` first occurs in `haystack`, ASCII case ignored. A plain window scan rather
/// than `str::find`: the bodies are short, and std's two-way searcher alone added kilobytes
/// to the browser module.
fn find(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether an S3 error says the presigned URL (or the credentials it was signed with) ran out:
/// a fresh reservation brings a freshly signed URL. AWS and s3s-fs say `AccessDenied` with
/// "Request has expired"; the dedicated codes are what other servers use for the same fault.
fn s3_expired(code: &str, message: &str) -> bool {
    match code {
        "ExpiredToken" | "RequestExpired" | "ExpiredRequest" | "TokenRefreshRequired" => true,
        "AccessDenied" => find(message, "expired").is_some(),
        _ => false,
    }
}

/// The five predefined XML entities; anything else (numeric references, which S3 servers do not
/// write in codes and messages) is kept as written.
fn unescape_xml(s: &str) -> String {
    const ENTITIES: [(&str, char); 5] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let entity = ENTITIES.iter().find(|(e, _)| rest.starts_with(e));
        let (decoded, len) = entity.map_or((c, c.len_utf8()), |&(e, d)| (d, e.len()));
        out.push(decoded);
        rest = rest.get(len..).unwrap_or_default();
    }
    out
}

/// Whether a failure is worth the same request again: no answer at all (network, stall), a
/// server's passing trouble (408, 429, 5xx except 501 and 505, which will not change), or a
/// storage server that timed out reading the body. Any other 4xx is a refusal: asking again
/// gets the same answer.
pub fn retryable(status: Option<u16>, code: &str) -> bool {
    if code == code::NETWORK || code == code::TIMEOUT {
        return true;
    }
    match status {
        Some(408 | 429) => true,
        Some(501 | 505) => false,
        Some(s) => (500..=599).contains(&s),
        None => false,
    }
}

/// Whether a failed transfer should get a fresh reservation (a newly signed URL) rather than
/// fail: its URL expired.
pub fn renews_reservation(code: &str) -> bool {
    code == code::EXPIRED
}

/// Whether an API call failed on its credential, so a token from `getToken()` is renewed and
/// the call made once more: 401 (unknown or revoked token) or an expired token.
pub fn renews_token(status: Option<u16>, code: &str) -> bool {
    status == Some(401) || code == code::EXPIRED
}

/// Retries with exponential backoff and "equal jitter": the n-th retry waits between half and
/// all of `base_ms * 2^(n-1)`, capped at [`MAX_RETRY_DELAY_MS`]. Half fixed keeps a floor under
/// the wait; half random spreads many clients that failed together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry, before jitter, in milliseconds.
    pub base_ms: f64,
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1 for the first retry). `random` is a uniform
    /// draw from `[0, 1)` (`Math.random()`); values outside are clamped.
    pub fn backoff_ms(&self, attempt: u32, random: f64) -> f64 {
        // 2^16 * base is far above the cap for any base; the bound keeps powi finite.
        let exp = self.base_ms * 2f64.powi(attempt.clamp(1, 16) as i32 - 1);
        let capped = exp.min(MAX_RETRY_DELAY_MS);
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        capped / 2.0 + random * capped / 2.0
    }

    /// After attempt `failed` (1 for the first) failed with `status`/`code`: how long to wait
    /// before trying again, or `None` when the failure is final.
    pub fn next_delay(
        &self,
        failed: u32,
        status: Option<u16>,
        code: &str,
        random: f64,
    ) -> Option<f64> {
        (retryable(status, code) && failed <= self.retries).then(|| self.backoff_ms(failed, random))
    }
}

/// An upload token as the module keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadToken {
    /// The bearer token, `lkt_...`.
    pub token: String,
    /// Where files named by their file name go (`POST /v1/tokens`' `path_prefix`).
    pub path_prefix: String,
    /// `Date.now()` milliseconds from which it is asked for again; infinite when the answer
    /// said nothing about expiry.
    pub renew_at_ms: f64,
}

/// What `getToken()` may resolve to when it is not a bare string: the answer of
/// `POST /v1/tokens` ([`crate::api::TokenMinted`]) or any part of it that holds `token`. A
/// lenient view of that type rather than the type itself: a page's token route may pass on only
/// the token, and a token without `expires_at` is simply never renewed ahead of time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenAnswer {
    pub token: Option<String>,
    pub path_prefix: Option<String>,
    /// Seconds since the epoch, as [`crate::api::TokenMinted::expires_at`].
    pub expires_at: Option<u64>,
}

/// Reads a token answer given as JSON text (the browser stringifies what `getToken()` gave):
/// decoded as [`TokenAnswer`], then checked by [`parse_token`].
pub fn parse_token_answer(json: &str) -> Result<UploadToken, TokenError> {
    let answer: TokenAnswer =
        serde_json::from_str(json).map_err(|e| TokenError::NotAnAnswer(e.to_string()))?;
    parse_token(
        answer.token.as_deref(),
        answer.path_prefix.as_deref(),
        // Whole seconds well inside f64's exact range (2^53).
        answer.expires_at.map(|s| s as f64),
    )
}

/// Why a token answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Neither a string nor an object with a non-empty `token`.
    #[error("getToken() must give a token string or {{token}}")]
    Missing,
    /// An API key: a server secret that a page must never hold.
    #[error(
        "that is an API key, not an upload token: mint a token on your server (POST /v1/tokens)"
    )]
    ApiKey,
    /// An object that does not decode as a [`TokenAnswer`] (a field of the wrong type).
    #[error("getToken() gave something that is not a token answer: {0}")]
    NotAnAnswer(String),
    /// Characters that cannot be sent in an `Authorization` header.
    #[error("the token contains characters a token never has (spaces, control or non-ASCII)")]
    Malformed,
}

/// Reads what `getToken()` gave: the token (a string, or the answer's `token`), the answer's
/// `path_prefix` and `expires_at` (Unix seconds). Surrounding whitespace is dropped (a route
/// that answers the token as text with a newline); an API key is refused even if a page hands
/// one over.
pub fn parse_token(
    token: Option<&str>,
    path_prefix: Option<&str>,
    expires_at_s: Option<f64>,
) -> Result<UploadToken, TokenError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let token = token.ok_or(TokenError::Missing)?;
    if token.starts_with("lk_") {
        return Err(TokenError::ApiKey);
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Malformed);
    }
    let renew_at_ms = match expires_at_s {
        Some(s) if s.is_finite() && s > 0.0 => s * 1000.0 - TOKEN_MARGIN_MS,
        _ => f64::INFINITY,
    };
    Ok(UploadToken {
        token: token.to_owned(),
        path_prefix: path_prefix.unwrap_or_default().to_owned(),
        renew_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_EXPIRED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>1</X-Amz-Expires><Expires>2026-12-02T00:00:01Z</Expires><ServerTime>2026-12-02T00:00:05Z</ServerTime><RequestId>R</RequestId><HostId>H</HostId></Error>"#;

    #[test]
    fn the_workers_json_error_keeps_its_code_and_message() {
        let r = classify(
            403,
            r#"{"error":{"code":"expired","message":"this signed URL or token has expired"}}"#,
        );
        assert_eq!(
            r,
            Refusal {
                code: "expired".into(),
                message: "this signed URL or token has expired".into(),
                source: Source::Worker,
            }
        );
        let r = classify(
            413,
            r#"{"error":{"code":"too_large","message":"file is 9 bytes; the limit here is 8 bytes"}}"#,
        );
        assert_eq!((r.code.as_str(), r.source), ("too_large", Source::Worker));
    }

    #[test]
    fn an_expired_presigned_url_reads_as_expired_like_the_workers() {
        let r = classify(403, AWS_EXPIRED);
        assert_eq!(r.code, code::EXPIRED);
        assert_eq!(r.source, Source::Storage);
        assert_eq!(
            r.message,
            "the storage server refused the transfer (AccessDenied: Request has expired)"
        );
        assert!(renews_reservation(&r.code));
        // The dedicated codes other servers use, at whatever status they come with.
        for c in [
            "ExpiredToken",
            "RequestExpired",
            "ExpiredRequest",
            "TokenRefreshRequired",
        ] {
            let body = format!("<Error><Code>{c}</Code><Message>x</Message></Error>");
            assert_eq!(classify(400, &body).code, code::EXPIRED, "{c}");
        }
    }

    #[test]
    fn other_storage_refusals_are_not_expiry_whatever_the_status() {
        let denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        let r = classify(403, denied);
        assert_eq!(r.code, code::STORAGE_REFUSED);
        assert!(!renews_reservation(&r.code));
        assert!(!retryable(Some(403), &r.code));
        let sig =
            "<?xml version=\"1.0\"?>\n<Error>\n  <Code>SignatureDoesNotMatch</Code>\n</Error>";
        let r = classify(403, sig);
        assert_eq!(
            (r.code.as_str(), r.message.as_str()),
            (
                code::STORAGE_REFUSED,
                "the storage server refused the transfer (SignatureDoesNotMatch)"
            )
        );
        let digest = "<Error><Code>BadDigest</Code><Message>The x-amz-checksum-sha256 you specified did not match the calculated checksum.</Message></Error>";
        assert_eq!(classify(400, digest).code, code::STORAGE_REFUSED);
        // A 403 alone says nothing about expiry.
        assert_eq!(classify(403, "").code, code::BAD_ANSWER);
    }

    #[test]
    fn a_storage_timeout_and_a_slow_down_are_retried() {
        let timeout = "<Error><Code>RequestTimeout</Code><Message>Your socket connection to the server was not read from or written to within the timeout period.</Message></Error>";
        let r = classify(400, timeout);
        assert_eq!(r.code, code::TIMEOUT);
        assert!(retryable(Some(400), &r.code));
        let slow = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let r = classify(503, slow);
        assert!(retryable(Some(503), &r.code));
    }

    #[test]
    fn anything_else_is_a_bad_answer_with_the_status() {
        for body in [
            "<html><body>502 Bad Gateway</body></html>",
            "",
            "not json",
            r#"{"error":"flat string"}"#,
            r#"{"message":"no error object"}"#,
            "<Error><Message>no code</Message></Error>",
            "<Code>Orphan</Code>",
        ] {
            let r = classify(502, body);
            assert_eq!(
                (r.code.as_str(), r.message.as_str(), r.source),
                (
                    code::BAD_ANSWER,
                    "the server answered HTTP 502",
                    Source::Unknown
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn xml_entities_are_decoded_and_unknown_ones_kept() {
        assert_eq!(
            s3_error("<Error><Code>A&amp;B</Code><Message>&lt;x&gt; &quot;y&quot; &apos;z&apos; &#65; &bogus; & end&amp;lt;</Message></Error>"),
            Some(("A&B".into(), "<x> \"y\" 'z' &#65; &bogus; & end&lt;".into()))
        );
        assert_eq!(s3_error("<Error><Code></Code></Error>"), None);
        // A truncated document: the code is there, the message is not closed.
        assert_eq!(
            s3_error("<Error><Code>InternalError</Code><Message>We encount"),
            Some(("InternalError".into(), String::new()))
        );
    }

    #[test]
    fn retried_are_network_failures_and_passing_server_trouble_only() {
        assert!(retryable(None, code::NETWORK));
        assert!(retryable(None, code::TIMEOUT));
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(retryable(Some(s), "whatever"), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 411, 413, 415, 416, 422, 501, 505] {
            assert!(!retryable(Some(s), "whatever"), "{s}");
        }
        for c in [
            code::ABORTED,
            code::INVALID,
            code::TOO_LARGE,
            code::BAD_ANSWER,
        ] {
            assert!(!retryable(None, c), "{c}");
        }
    }

    #[test]
    fn a_token_is_renewed_on_401_or_expiry_only() {
        assert!(renews_token(Some(401), "unauthorized"));
        assert!(renews_token(Some(403), code::EXPIRED));
        assert!(!renews_token(Some(403), "forbidden"));
        assert!(!renews_token(None, code::NETWORK));
    }

    #[test]
    fn backoff_doubles_from_the_base_with_half_of_it_random() {
        let p = RetryPolicy {
            retries: 4,
            base_ms: 500.0,
        };
        // Lowest and highest draw bound each step.
        assert_eq!(p.backoff_ms(1, 0.0), 250.0);
        assert_eq!(p.backoff_ms(1, 1.0), 500.0);
        assert_eq!(p.backoff_ms(2, 0.0), 500.0);
        assert_eq!(p.backoff_ms(3, 0.5), 1500.0);
        assert_eq!(p.backoff_ms(4, 0.999), 2000.0 + 0.999 * 2000.0);
        for attempt in 1..=40 {
            for r in [0.0, 0.3, 0.999_999] {
                let d = p.backoff_ms(attempt, r);
                let step = (500.0 * 2f64.powi(attempt.min(16) as i32 - 1)).min(MAX_RETRY_DELAY_MS);
                assert!((step / 2.0..=step).contains(&d), "{attempt} {r} {d}");
            }
        }
    }

    #[test]
    fn backoff_is_capped_and_survives_odd_inputs() {
        let p = RetryPolicy {
            retries: 20,
            base_ms: 60_000.0,
        };
        assert_eq!(p.backoff_ms(1, 1.0), MAX_RETRY_DELAY_MS);
        assert_eq!(p.backoff_ms(u32::MAX, 1.0), MAX_RETRY_DELAY_MS);
        assert_eq!(p.backoff_ms(u32::MAX, 0.0), MAX_RETRY_DELAY_MS / 2.0);
        // Attempt 0 counts as the first retry; a draw out of range is clamped, NaN is 0.
        assert_eq!(p.backoff_ms(0, 0.0), p.backoff_ms(1, 0.0));
        assert_eq!(p.backoff_ms(1, 7.0), MAX_RETRY_DELAY_MS);
        assert_eq!(p.backoff_ms(1, -1.0), MAX_RETRY_DELAY_MS / 2.0);
        assert_eq!(p.backoff_ms(1, f64::NAN), MAX_RETRY_DELAY_MS / 2.0);
        let zero = RetryPolicy {
            retries: 3,
            base_ms: 0.0,
        };
        assert_eq!(zero.backoff_ms(5, 0.7), 0.0);
    }

    #[test]
    fn next_delay_stops_at_refusals_and_after_the_last_retry() {
        let p = RetryPolicy {
            retries: 2,
            base_ms: 100.0,
        };
        assert_eq!(p.next_delay(1, None, code::NETWORK, 0.0), Some(50.0));
        assert_eq!(p.next_delay(2, Some(503), "unavailable", 1.0), Some(200.0));
        assert_eq!(p.next_delay(3, Some(503), "unavailable", 0.0), None);
        assert_eq!(p.next_delay(1, Some(403), code::EXPIRED, 0.0), None);
        assert_eq!(p.next_delay(1, None, code::ABORTED, 0.0), None);
        let never = RetryPolicy {
            retries: 0,
            base_ms: 100.0,
        };
        assert_eq!(never.next_delay(1, None, code::NETWORK, 0.0), None);
    }

    #[test]
    fn a_token_answer_gives_token_prefix_and_renewal_time() {
        let t = parse_token(Some("lkt_abc.def"), Some("users/7/"), Some(1_000.0));
        assert_eq!(
            t,
            Ok(UploadToken {
                token: "lkt_abc.def".into(),
                path_prefix: "users/7/".into(),
                renew_at_ms: 1_000_000.0 - TOKEN_MARGIN_MS,
            })
        );
        // A bare string (or a text answer with its newline) never expires as far as we know.
        let t = parse_token(Some("  lkt_x\n"), None, None);
        assert_eq!(
            t,
            Ok(UploadToken {
                token: "lkt_x".into(),
                path_prefix: String::new(),
                renew_at_ms: f64::INFINITY,
            })
        );
        for odd in [f64::NAN, f64::INFINITY, -5.0, 0.0] {
            let t = parse_token(Some("lkt_x"), None, Some(odd));
            assert_eq!(
                t.map(|t| t.renew_at_ms),
                Ok(f64::INFINITY),
                "expires_at {odd}"
            );
        }
    }

    #[test]
    fn a_token_answer_without_a_usable_token_is_refused() {
        assert_eq!(parse_token(None, None, None), Err(TokenError::Missing));
        assert_eq!(parse_token(Some(""), None, None), Err(TokenError::Missing));
        assert_eq!(
            parse_token(Some(" \t\n"), None, None),
            Err(TokenError::Missing)
        );
        assert_eq!(
            parse_token(Some("lk_0123.secret"), None, None),
            Err(TokenError::ApiKey)
        );
        assert_eq!(
            parse_token(Some(" lk_0123.secret"), None, None),
            Err(TokenError::ApiKey)
        );
        for bad in ["lkt_a b", "lkt_a\u{7f}", "lkt_é", "lkt_a\r\nx-evil: 1"] {
            assert_eq!(
                parse_token(Some(bad), None, None),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            TokenError::Missing.to_string(),
            "getToken() must give a token string or {token}"
        );
    }

    #[test]
    fn a_token_answer_decodes_from_what_post_v1_tokens_answers() {
        // keys.rs mint_token, through serde as the Worker encodes it.
        let minted = crate::api::TokenMinted {
            token: "lkt_abc.def".into(),
            expires_at: 1_000,
            namespace: "uploads".into(),
            path_prefix: "users/7/".into(),
            max_size: 20,
            types: vec!["image/*".into()],
        };
        let json = serde_json::to_string(&minted).unwrap();
        assert_eq!(
            parse_token_answer(&json),
            Ok(UploadToken {
                token: "lkt_abc.def".into(),
                path_prefix: "users/7/".into(),
                renew_at_ms: 1_000_000.0 - TOKEN_MARGIN_MS,
            })
        );
        // Only the token, or nulls: never renewed ahead of time.
        for only in [
            r#"{"token":"lkt_x"}"#,
            r#"{"token":"lkt_x","expires_at":null,"path_prefix":null}"#,
        ] {
            let t = parse_token_answer(only).unwrap();
            assert_eq!((t.token.as_str(), t.path_prefix.as_str()), ("lkt_x", ""));
            assert_eq!(t.renew_at_ms, f64::INFINITY);
        }
    }

    #[test]
    fn a_token_answer_of_the_wrong_shape_is_refused_with_the_reason() {
        assert_eq!(parse_token_answer("{}"), Err(TokenError::Missing));
        assert_eq!(
            parse_token_answer(r#"{"token":"lk_0.s"}"#),
            Err(TokenError::ApiKey)
        );
        for odd in [
            r#"{"token":5}"#,
            r#"{"token":"lkt_x","expires_at":"soon"}"#,
            r#"{"token":"lkt_x","expires_at":-1}"#,
            "[]",
            "null",
            "not json",
        ] {
            match parse_token_answer(odd) {
                Err(TokenError::NotAnAnswer(why)) => assert!(!why.is_empty(), "{odd}"),
                other => panic!("{odd}: {other:?}"),
            }
        }
    }
}
