//! Faults the real Worker cannot be made to produce on demand (a passing 503, a 429, an answer
//! from a newer Worker with a plan this client does not know), played by a stand-in server on
//! loopback that answers canned responses in order and records the requests. Everything else
//! is tested against the real Worker (tests/cli-*.test.mjs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use locker_client::{Client, Error, PutOptions, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

/// Serves `answers` (status, JSON body), one per connection, then closes.
async fn stand_in(answers: Vec<(u16, &'static str)>) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for (status, body) in answers {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then as much body as content-length says.
            loop {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len || n == 0 {
                        log.lock()
                            .unwrap()
                            .push(text.lines().next().unwrap_or("").to_owned());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            sock.shutdown().await.ok();
        }
    });
    StandIn { url, seen }
}

fn fast(client: Client) -> Client {
    client.with_retry(RetryPolicy {
        retries: 3,
        base_ms: 1.0,
    })
}

const ROUTES: &str = r#"{"routes":[],"default_bucket_id":"abc"}"#;

#[tokio::test]
async fn passing_failures_are_retried_and_refusals_are_not() {
    let busy = r#"{"error":{"code":"unavailable","message":"try later"}}"#;
    let s = stand_in(vec![(503, busy), (429, busy), (200, ROUTES)]).await;
    let client = fast(Client::new(&s.url, "lk_x.y").unwrap());
    let routes = client.routes().await.unwrap();
    assert_eq!(routes.default_bucket_id, "abc");
    assert_eq!(s.seen.lock().unwrap().len(), 3);

    let denied = r#"{"error":{"code":"forbidden","message":"this key may not read"}}"#;
    let s = stand_in(vec![(403, denied), (200, ROUTES)]).await;
    let client = fast(Client::new(&s.url, "lk_x.y").unwrap());
    match client.routes().await {
        Err(Error::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str(), message.as_str()),
                (403, "forbidden", "this key may not read")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.seen.lock().unwrap().len(), 1, "a 403 is asked once");
}

#[tokio::test]
async fn a_key_is_created_once_even_when_the_answer_is_a_503() {
    let busy = r#"{"error":{"code":"unavailable","message":"try later"}}"#;
    let s = stand_in(vec![(503, busy), (503, busy)]).await;
    let client = fast(Client::new(&s.url, "lk_x.y").unwrap());
    let request = locker_client::api::CreateKey {
        tenant: None,
        namespaces: vec!["*".into()],
        ops: vec![locker_client::api::Op::Read],
        max_size: None,
        types: None,
        label: None,
        expires_in: None,
    };
    assert_eq!(
        client.create_key(&request).await.unwrap_err().status(),
        Some(503)
    );
    assert_eq!(s.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unknown_upload_plan_is_a_clear_error_and_the_reservation_is_released() {
    // What a Worker with multipart might answer; this client sends no byte and aborts.
    let multipart = r#"{"status":"multipart","upload_id":"up_1","part_size":5242880,"parts":[]}"#;
    let aborted = r#"{"status":"aborted","upload_id":"up_1"}"#;
    let s = stand_in(vec![(201, multipart), (200, aborted)]).await;
    let client = fast(Client::new(&s.url, "lk_x.y").unwrap());
    let file = std::env::temp_dir().join(format!("locker-client-plan-{}", std::process::id()));
    std::fs::write(&file, b"hello").unwrap();
    let dest = "locker://corp/a.bin".parse().unwrap();
    let err = client
        .put_file(
            &file,
            &dest,
            &PutOptions::new("application/octet-stream"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsupported_plan", "{err}");
    assert!(err.to_string().contains("multipart"), "{err}");
    assert_eq!(
        *s.seen.lock().unwrap(),
        [
            "POST /v1/uploads HTTP/1.1",
            "DELETE /v1/uploads/up_1 HTTP/1.1"
        ]
    );
    std::fs::remove_file(&file).ok();
}

#[test]
fn bad_base_urls_and_keys_are_refused_and_debug_hides_the_key() {
    assert!(Client::new("ftp://x", "k").is_err());
    assert!(Client::new("not a url", "k").is_err());
    assert!(Client::new("http://x", "").is_err());
    assert!(Client::new("http://x", "a b").is_err());
    let c = Client::new("http://127.0.0.1:1/base/", "lk_secret.value").unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("secret"), "{shown}");
}
