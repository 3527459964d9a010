//! What the CLI prints: plain lines (for people and pipes), progress bars when stdout is a
//! terminal, or exactly one JSON document with `--json`. Results go to stdout, problems to
//! stderr.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use locker_core::api::ErrorBody;
use serde::Serialize;

pub(crate) struct Out {
    pub(crate) json: bool,
    /// Progress bars are drawn (stdout and stderr are terminals and not `--json`).
    pub(crate) bars: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        let bars = !json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Self { json, bars }
    }

    /// Prints `value` as the command's JSON document.
    pub(crate) fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("locker: cannot encode the answer: {e}"),
        }
    }

    /// A failure: on stderr for people, and with `--json` also as the API's error shape on
    /// stdout, so a script reads one document either way. A partial failure already printed
    /// its document; only its summary line goes to stderr.
    pub(crate) fn fail(&self, code: &str, message: &str, partial: bool) {
        eprintln!("locker: {message}");
        if self.json && !partial {
            self.json(&ErrorBody::new(code, message));
        }
    }

    /// A bar over `len` bytes, hidden unless bars are drawn.
    pub(crate) fn bytes_bar(&self, len: u64) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta} {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    }

    /// A line printed above the bar (or plainly without one).
    pub(crate) fn line(&self, bar: &ProgressBar, text: &str) {
        if self.bars {
            bar.println(text);
        } else if !self.json {
            println!("{text}");
        }
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time, to the second.
pub(crate) fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || ms.to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}
