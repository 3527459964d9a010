//! `locker doctor`: is this server well? Health, integrity counts, clock skew, and whether a
//! browser at `--origin` may upload straight to each s3 bucket (CORS).

use locker_client::{Client, Error};
use serde::Serialize;

use crate::out::Out;
use crate::Fail;

/// Signed URLs are checked against the server's clock: an hour's URL from a server a minute
/// off still works, much more and uploads fail as "expired" or "not yet valid".
const MAX_SKEW_S: i64 = 60;

/// The headers the Worker signs into a direct (s3) upload; the bucket's CORS must allow them.
const SIGNED_HEADERS: [&str; 3] = ["content-type", "if-none-match", "x-amz-checksum-sha256"];

#[derive(Serialize)]
struct Check {
    name: String,
    /// `ok`, `fail` or `skipped`.
    status: &'static str,
    detail: String,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    checks: Vec<Check>,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: if ok { "ok" } else { "fail" },
        detail: detail.into(),
    }
}

fn skipped(name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: "skipped",
        detail: detail.into(),
    }
}

/// A refusal for want of rights skips a check; anything else fails it.
fn refused(name: &str, e: &Error) -> Check {
    match e.status() {
        Some(401 | 403) => skipped(name, format!("this key may not: {}", e.message())),
        _ => check(name, false, e.to_string()),
    }
}

pub(crate) async fn run(client: &Client, origin: Option<&str>, out: &Out) -> Result<(), Fail> {
    let mut checks = Vec::new();
    match client.health().await {
        Ok(h) => {
            let detail = format!(
                "HTTP {}; d1: {}; r2: {}",
                h.status, h.health.d1.detail, h.health.r2.detail
            );
            checks.push(check(
                "health",
                h.status == 200 && h.health.d1.ok && h.health.r2.ok,
                detail,
            ));
            checks.push(match h.date.as_deref().map(skew_s) {
                Some(Some(skew)) => check(
                    "clock skew",
                    skew.abs() <= MAX_SKEW_S,
                    format!("the server's clock is {skew:+} s from this machine's"),
                ),
                _ => skipped("clock skew", "the server sent no readable Date header"),
            });
        }
        Err(e) => checks.push(check("health", false, e.to_string())),
    }
    match client.stats().await {
        Ok(s) => {
            let i = &s.integrity;
            let counts = [
                ("routes without a bucket", Some(i.routes_without_bucket)),
                ("files without a bucket", Some(i.files_without_bucket)),
                ("blobs without a bucket", i.blobs_without_bucket),
                (
                    "files without a verified blob",
                    i.files_without_verified_blob.into(),
                ),
            ];
            let bad: Vec<String> = counts
                .iter()
                .filter_map(|(what, n)| n.filter(|&n| n > 0).map(|n| format!("{n} {what}")))
                .collect();
            let detail = if bad.is_empty() {
                format!(
                    "all counts 0 ({} files, {} uploads pending)",
                    s.files, s.uploads.pending
                )
            } else {
                bad.join(", ")
            };
            checks.push(check("integrity", bad.is_empty(), detail));
        }
        Err(e) => checks.push(refused("integrity", &e)),
    }
    match client.buckets().await {
        Ok(list) => {
            for b in list.buckets.iter().filter(|b| b.transport.as_str() == "s3") {
                let name = format!("cors {}", b.name);
                let (Some(endpoint), Some(origin)) = (&b.endpoint, origin) else {
                    checks.push(skipped(
                        name,
                        "give --origin (the page that uploads) to check",
                    ));
                    continue;
                };
                let url = object_url(endpoint, &b.name, b.path_style);
                checks.push(match client.cors_preflight(&url, origin, "PUT", &SIGNED_HEADERS).await {
                    Ok(p) => check(
                        name,
                        p.allows(origin, "PUT", &SIGNED_HEADERS),
                        format!(
                            "preflight from {origin}: HTTP {}, allow-origin {:?}, allow-headers {:?}",
                            p.status, p.allow_origin, p.allow_headers
                        ),
                    ),
                    Err(e) => check(name, false, e.to_string()),
                });
            }
        }
        Err(e) => checks.push(refused("buckets", &e)),
    }
    let ok = checks.iter().all(|c| c.status != "fail");
    if out.json {
        out.json(&Report { ok, checks });
    } else {
        for c in &checks {
            println!("{:<7} {:<22} {}", c.status, c.name, c.detail);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Fail::Partial("some checks failed".into()))
    }
}

/// Seconds the server's `Date` is ahead of this machine's clock.
fn skew_s(date: &str) -> Option<i64> {
    let server = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .ok()?;
    Some(server.as_second() - jiff::Timestamp::now().as_second())
}

/// Where a browser would PUT an object of this bucket (what the preflight is asked about).
fn object_url(endpoint: &str, bucket: &str, path_style: bool) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if path_style {
        return format!("{endpoint}/{bucket}/locker-doctor");
    }
    match endpoint.split_once("://") {
        Some((scheme, host)) => format!("{scheme}://{bucket}.{host}/locker-doctor"),
        None => format!("{endpoint}/{bucket}/locker-doctor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls() {
        assert_eq!(
            object_url("http://127.0.0.1:9000/", "b", true),
            "http://127.0.0.1:9000/b/locker-doctor"
        );
        assert_eq!(
            object_url("https://s3.example.com", "b", false),
            "https://b.s3.example.com/locker-doctor"
        );
    }

    #[test]
    fn reads_an_http_date() {
        assert!(skew_s("Wed, 02 Dec 2026 03:19:35 GMT").is_some());
        assert!(skew_s("yesterday").is_none());
    }
}
