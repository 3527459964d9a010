//! `locker logs [--since --until --op --limit --follow]`.

use std::time::Duration;

use locker_client::{Client, LogQuery};
use locker_core::api::{LogEntry, LogPage};

use crate::cli::LogsArgs;
use crate::out::{time, Out};
use crate::Fail;

/// How often `--follow` asks for new rows.
const POLL: Duration = Duration::from_secs(2);

pub(crate) fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

pub(crate) async fn run(client: &Client, args: LogsArgs, out: &Out) -> Result<(), Fail> {
    let now = now_ms();
    let mut query = LogQuery {
        since: args.since.map(|t| t.to_ms(now)),
        until: args.until.map(|t| t.to_ms(now)),
        operation: args.op.clone(),
        limit: Some(args.limit.clamp(1, 1000)),
        ..LogQuery::default()
    };
    let page = client.logs(&query).await?;
    if !args.follow {
        if out.json {
            out.json(&page);
        } else {
            // Newest first, as the server pages them.
            page.entries.iter().for_each(print_row);
        }
        return Ok(());
    }
    // Following: oldest first, then whatever is newer than the last row shown. Rows are
    // told apart by id (increasing), since several share a millisecond.
    let mut last_id = 0;
    let show = |entries: Vec<LogEntry>, last_id: &mut u64| {
        for e in entries.into_iter().rev() {
            if e.id <= *last_id {
                continue;
            }
            *last_id = e.id;
            if out.json {
                // One JSON document per line while following (NDJSON).
                match serde_json::to_string(&e) {
                    Ok(s) => println!("{s}"),
                    Err(err) => eprintln!("locker: {err}"),
                }
            } else {
                print_row(&e);
            }
        }
    };
    show(page.entries, &mut last_id);
    query.until = None;
    // One interrupt listener for the whole follow: a Ctrl-C that arrives while a request is
    // under way ends it too (a listener made per poll would miss it).
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(|e| Fail::Failed(e.to_string())),
        result = follow(client, &query, &mut last_id, &show) => result,
    }
}

/// Polls for rows newer than `last_id` until an error.
async fn follow(
    client: &Client,
    query: &LogQuery,
    last_id: &mut u64,
    show: &impl Fn(Vec<LogEntry>, &mut u64),
) -> Result<(), Fail> {
    loop {
        tokio::time::sleep(POLL).await;
        // The newest rows since the last poll's window, every page of them.
        let since = query
            .since
            .unwrap_or(0)
            .max(now_ms().saturating_sub(3_600_000));
        let mut fresh = Vec::new();
        let mut cursor = None;
        loop {
            let page: LogPage = client
                .logs(&LogQuery {
                    since: Some(since),
                    cursor: cursor.clone(),
                    limit: Some(1000),
                    ..query.clone()
                })
                .await?;
            let older = page.entries.iter().any(|e| e.id <= *last_id);
            fresh.extend(page.entries);
            match page.cursor {
                Some(c) if !older => cursor = Some(c),
                _ => break,
            }
        }
        show(fresh, last_id);
    }
}

fn print_row(e: &LogEntry) {
    let place = match (&e.namespace, &e.path) {
        (Some(ns), Some(p)) => format!("{ns}/{p}"),
        (Some(ns), None) => ns.clone(),
        _ => "-".to_owned(),
    };
    println!(
        "{}  {:<12} {}  {}  {} bytes{}",
        time(e.ts),
        e.operation.as_str(),
        if e.success == 1 { "ok  " } else { "FAIL" },
        place,
        e.bytes,
        e.error
            .as_deref()
            .map(|m| format!("  {m}"))
            .unwrap_or_default()
    );
}
