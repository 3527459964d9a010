//! Registry backups: the manifest the Worker writes last, the names of a backup's objects, which
//! backups retention keeps, and the SQL a restore replays. Pure: the Worker reads D1 and writes
//! storage, `cargo xtask restore` reads files and drives wrangler; both use these rules.
//!
//! A backup is a set of objects under `backups/{id}/` in the default bucket: one gzip part of
//! JSON lines (one registry row per line, a JSON object keyed by column) per page of a table,
//! then `manifest.json`. A backup exists for a reader only once its manifest is written; parts
//! without a manifest are an unfinished run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sign::Claims;

/// The manifest's format; a restore refuses another.
pub const FORMAT: u32 = 1;

/// Where backups live in the default bucket; the reconciler never looks here (it scans `t/`).
pub const PREFIX: &str = "backups/";

/// The manifest's name inside a backup.
pub const MANIFEST: &str = "manifest.json";

/// The tables a backup holds, in the order it reads them. Referenced tables come after the
/// tables that reference them: `buckets` last, because buckets are never deleted (only
/// deactivated), so every bucket a row read earlier names is still there when `buckets` is read.
/// `blobs` referenced by `files` are read with each page of `files` in the same D1 batch (one
/// transaction), so every file in a backup has its blob in it too. `upload_parts` (a
/// `WITHOUT ROWID` table, paged by its primary key) comes last, after the `uploads` its rows
/// name: a part of an upload created meanwhile has no upload in the backup, and a restore leaves
/// out every part whose upload it does not hold as `pending` ([`restorable_part`]). Last, too,
/// so that a backup running when this table joined the list keeps its step numbers.
pub const TABLES: [&str; 8] = [
    "routes",
    "api_keys",
    "uploads",
    "blobs",
    "files",
    "buckets",
    "access_log",
    "upload_parts",
];

/// The order a restore writes the tables in: referenced rows before the rows naming them
/// (D1 enforces foreign keys).
pub const RESTORE_ORDER: [&str; 8] = [
    "buckets",
    "blobs",
    "files",
    "routes",
    "uploads",
    "upload_parts",
    "api_keys",
    "access_log",
];

/// The id of an `uploads` row (a line of a part) if the upload is `pending`: only such an
/// upload can still get parts and be completed, so only its parts are restored.
pub fn pending_upload(line: &str) -> Option<String> {
    let row: Value = serde_json::from_str(line).ok()?;
    if row.get("state")?.as_str()? != "pending" {
        return None;
    }
    Some(row.get("id")?.as_str()?.to_owned())
}

/// Whether an `upload_parts` row (a line of a part) is restored: only when the backup holds its
/// upload as `pending`. Parts of an upload that ended are deleted with it; a part read after
/// its upload's page (the upload created or ended while the backup ran) would otherwise name
/// an upload the restore has not, or revive the parts of one that ended.
pub fn restorable_part(pending: &std::collections::BTreeSet<String>, line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|row| {
            row.get("upload_id")?
                .as_str()
                .map(|id| pending.contains(id))
        })
        .unwrap_or(false)
}

/// Whether a running backup counts as stuck: no page written for `timeout_s` seconds (its last
/// progress, or its start). A backup that makes progress is never stuck however long it runs;
/// one whose runs keep dying or failing is given up so that later backups are not blocked.
pub fn stuck(last_progress_ms: u64, now_ms: u64, timeout_s: u64) -> bool {
    now_ms.saturating_sub(last_progress_ms) > timeout_s.saturating_mul(1000)
}

/// A backup's manifest: what it holds and how to check it, written after every part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// The last migration applied to the database the backup was read from (`0004_query_indexes`).
    pub schema_version: String,
    /// Unix milliseconds.
    pub started_at: u64,
    /// Unix milliseconds; `None` while the backup is being written.
    pub finished_at: Option<u64>,
    /// The access log is backed up up to this row id (the highest when the backup started):
    /// rows after it are in the next backup, and retention only deletes rows at or below it.
    pub access_log_high_water: u64,
    /// Rows per table (`blobs` counts each blob once, even when a page of `files` carried it).
    pub rows: BTreeMap<String, u64>,
    /// Compressed bytes of all parts.
    pub bytes: u64,
    pub parts: Vec<Part>,
}

/// One stored part: a gzip file of JSON lines, all rows of one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The object's name under `backups/{id}/`.
    pub name: String,
    pub table: String,
    pub rows: u64,
    /// Compressed size.
    pub bytes: u64,
    /// SHA-256 of the compressed bytes, as stored.
    pub sha256: String,
}

impl Manifest {
    pub fn new(id: &str, schema_version: &str, started_at: u64, high_water: u64) -> Self {
        Self {
            format: FORMAT,
            id: id.to_owned(),
            schema_version: schema_version.to_owned(),
            started_at,
            finished_at: None,
            access_log_high_water: high_water,
            rows: TABLES.iter().map(|t| ((*t).to_owned(), 0)).collect(),
            bytes: 0,
            parts: Vec::new(),
        }
    }

    /// Records a part; `new_rows` is how many of its rows count for the table (a page of blobs
    /// carried by `files` may repeat blobs already counted).
    pub fn add_part(&mut self, part: Part, new_rows: u64) {
        *self.rows.entry(part.table.clone()).or_insert(0) += new_rows;
        self.bytes += part.bytes;
        self.parts.push(part);
    }

    /// The name of the next part of `table`: numbered in the order written, which is the
    /// order a restore replays them in within a table.
    pub fn next_part_name(&self, table: &str) -> String {
        format!("{:05}-{table}.jsonl.gz", self.parts.len() + 1)
    }
}

/// A backup's id: its start time, sortable (`20261202T034500123Z`). Unix milliseconds in.
pub fn backup_id(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let (y, m, d) = civil(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}{:03}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        now_ms % 1000
    )
}

/// Whether `s` has the form of a backup id (what may go into an object key).
pub fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b[8] == b'T'
        && b[18] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || i == 18 || c.is_ascii_digit())
}

/// Whether `s` may be a part's (or the manifest's) name: no `/`, no dot segments.
pub fn valid_part_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

/// The object key of a backup's part (or manifest).
pub fn object_key(id: &str, name: &str) -> String {
    format!("{PREFIX}{id}/{name}")
}

/// The number a migration's name starts with (`0004_query_indexes` -> 4).
pub fn schema_number(name: &str) -> Option<u32> {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// (year, month, day) of a day number counted from 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Which complete backups retention deletes. A backup is kept when it is the newest of one of
/// the `keep_daily` most recent days that have a backup, or the newest of one of the
/// `keep_weekly` most recent weeks (Monday to Sunday, UTC) that have one. `backups` are
/// `(id, started_at ms)` of complete backups, in any order; the answer is sorted by id.
pub fn to_delete(backups: &[(String, u64)], keep_daily: u32, keep_weekly: u32) -> Vec<String> {
    let mut sorted: Vec<&(String, u64)> = backups.iter().collect();
    // Newest first; the id breaks ties of one millisecond.
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut keep = std::collections::BTreeSet::new();
    let mut newest_of = |period: &dyn Fn(u64) -> u64, limit: u32| {
        let mut seen = Vec::new();
        for (id, at) in &sorted {
            let p = period(*at);
            if seen.contains(&p) {
                continue;
            }
            if seen.len() >= limit as usize {
                break;
            }
            seen.push(p);
            keep.insert(id.clone());
        }
    };
    let day = |ms: u64| ms / 86_400_000;
    // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
    let week = |ms: u64| (ms / 86_400_000 + 3) / 7;
    newest_of(&day, keep_daily);
    newest_of(&week, keep_weekly);
    let mut gone: Vec<String> = sorted
        .iter()
        .filter(|(id, _)| !keep.contains(id))
        .map(|(id, _)| id.clone())
        .collect();
    gone.sort();
    gone
}

/// Why a backup cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("unknown table {0:?}")]
    UnknownTable(String),
    #[error("column name {0:?} is not a plain name")]
    BadColumn(String),
    #[error("a value of column {0:?} is not a string, number or null")]
    BadValue(String),
    #[error("a row of {0:?} is not a JSON object")]
    NotAnObject(String),
}

/// One registry row of a part as an SQL `INSERT` (blobs as `INSERT OR REPLACE`: a blob may be
/// in a page of `blobs` and again with the `files` that use it, and the later read wins).
/// Columns starting with `_` (the `_rowid` the pages are ordered by) are not written.
pub fn insert_sql(table: &str, line: &str) -> Result<String, RestoreError> {
    if !TABLES.contains(&table) {
        return Err(RestoreError::UnknownTable(table.to_owned()));
    }
    let row: Map<String, Value> = match serde_json::from_str(line) {
        Ok(Value::Object(row)) => row,
        _ => return Err(RestoreError::NotAnObject(table.to_owned())),
    };
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for (column, value) in &row {
        if column.starts_with('_') {
            continue;
        }
        if column.is_empty()
            || !column
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(RestoreError::BadColumn(column.clone()));
        }
        columns.push(column.as_str());
        values.push(literal(column, value)?);
    }
    let verb = if table == "blobs" {
        "INSERT OR REPLACE"
    } else {
        "INSERT"
    };
    Ok(format!(
        "{verb} INTO {table} ({}) VALUES ({});",
        columns.join(", "),
        values.join(", ")
    ))
}

fn literal(column: &str, value: &Value) -> Result<String, RestoreError> {
    match value {
        Value::Null => Ok("NULL".to_owned()),
        Value::Bool(b) => Ok(u8::from(*b).to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Ok(u.to_string())
            } else {
                // D1 answers integers as JS numbers; whole ones are written back as integers.
                let f = n
                    .as_f64()
                    .ok_or_else(|| RestoreError::BadValue(column.to_owned()))?;
                if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                    Ok(format!("{f:.0}"))
                } else {
                    Ok(f.to_string())
                }
            }
        }
        // The access log keeps refused input as it came, control characters and NUL included:
        // such a string goes in as the hex of its UTF-8, which no statement splitter or
        // SQL parser can misread.
        Value::String(s) if s.chars().any(char::is_control) => Ok(format!(
            "CAST(X'{}' AS TEXT)",
            crate::hash::to_hex(s.as_bytes())
        )),
        Value::String(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
        _ => Err(RestoreError::BadValue(column.to_owned())),
    }
}

/// The claims of a backup's download URL: every part of backup `id`, until `exp`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupClaims {
    pub id: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

impl Claims for BackupClaims {
    const AUDIENCE: &'static str = "locker-backup";
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn ids_sort_by_time_and_are_recognised() {
        // 2026-12-02 03:45:00.123 UTC
        let id = backup_id(1_796_183_100_123);
        assert_eq!(id, "20261202T034500123Z");
        assert!(valid_id(&id));
        assert!(backup_id(0) < backup_id(1) && backup_id(1) < backup_id(DAY));
        assert_eq!(backup_id(0), "19700101T000000000Z");
        for bad in [
            "",
            "20261202T034500123",
            "2026120xT034500123Z",
            "../x",
            "20261202T034500123Z/",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
        // 2000-02-29 exists; 2100-03-01 follows 2100-02-28.
        assert_eq!(&backup_id(951_782_400_000)[..8], "20000229");
        assert_eq!(&backup_id(4_107_542_400_000)[..8], "21000301");
    }

    #[test]
    fn part_names() {
        let mut m = Manifest::new("19700101T000000000Z", "0004_x", 0, 0);
        assert_eq!(m.next_part_name("files"), "00001-files.jsonl.gz");
        m.add_part(
            Part {
                name: m.next_part_name("files"),
                table: "files".into(),
                rows: 3,
                bytes: 10,
                sha256: String::new(),
            },
            3,
        );
        assert_eq!(m.next_part_name("blobs"), "00002-blobs.jsonl.gz");
        assert_eq!((m.rows["files"], m.bytes), (3, 10));
        assert!(valid_part_name(&m.next_part_name("access_log")));
        assert!(valid_part_name(MANIFEST));
        for bad in ["", "..", "../x", "a/b", "A.gz", ".hidden"] {
            assert!(!valid_part_name(bad), "{bad}");
        }
    }

    #[test]
    fn schema_numbers() {
        assert_eq!(schema_number("0004_query_indexes"), Some(4));
        assert_eq!(schema_number("0010_x.sql"), Some(10));
        assert_eq!(schema_number("x"), None);
    }

    fn ids(v: &[(u64, &str)]) -> Vec<(String, u64)> {
        v.iter().map(|(t, id)| ((*id).to_owned(), *t)).collect()
    }

    #[test]
    fn retention_keeps_the_newest_per_day_and_week() {
        // Three backups on one day: only the newest stays (keep 7 daily, 0 weekly).
        let same_day = ids(&[(10, "a"), (20, "b"), (30, "c")]);
        assert_eq!(to_delete(&same_day, 7, 0), vec!["a", "b"]);
        // Ten days, one backup a day, keep 3 daily: days 7, 8, 9 stay.
        let daily: Vec<(String, u64)> = (0..10).map(|d| (format!("d{d}"), d * DAY + 5)).collect();
        let gone = to_delete(&daily, 3, 0);
        assert_eq!(gone, (0..7).map(|d| format!("d{d}")).collect::<Vec<_>>());
        // Weekly on top: 1970-01-05 (day 4) is a Monday. Days 0-3 are one week, 4-10 the next.
        let gone = to_delete(&daily, 1, 2);
        // Kept: d9 (newest day and newest of week 2), d3 (newest of week 1).
        assert_eq!(gone, vec!["d0", "d1", "d2", "d4", "d5", "d6", "d7", "d8"]);
        // Nothing to keep: everything goes; nothing given: nothing goes.
        assert_eq!(to_delete(&same_day, 0, 0), vec!["a", "b", "c"]);
        assert!(to_delete(&[], 7, 4).is_empty());
    }

    #[test]
    fn rows_become_inserts() {
        let sql = insert_sql(
            "files",
            r#"{"_rowid":3,"tenant":"a'b","size":12,"filename":null,"ratio":1.5,"n":1.0e3}"#,
        )
        .unwrap();
        // serde_json keeps the keys sorted (no preserve_order): the statement names each.
        assert_eq!(
            sql,
            "INSERT INTO files (filename, n, ratio, size, tenant) \
             VALUES (NULL, 1000, 1.5, 12, 'a''b');"
        );
        assert!(insert_sql("blobs", r#"{"sha256":"x"}"#)
            .unwrap()
            .starts_with("INSERT OR REPLACE INTO blobs"));
        assert_eq!(
            insert_sql("sqlite_master", "{}"),
            Err(RestoreError::UnknownTable("sqlite_master".into()))
        );
        assert_eq!(
            insert_sql("files", r#"{"a; DROP TABLE files":1}"#),
            Err(RestoreError::BadColumn("a; DROP TABLE files".into()))
        );
        assert_eq!(
            insert_sql("files", r#"{"a":[1]}"#),
            Err(RestoreError::BadValue("a".into()))
        );
        // A refused path the access log kept as it came: NUL and a newline, as hex.
        assert_eq!(
            insert_sql("access_log", "{\"path\":\"a\\u0000\\n;'\"}").unwrap(),
            "INSERT INTO access_log (path) VALUES (CAST(X'61000a3b27' AS TEXT));"
        );
        assert_eq!(
            insert_sql("files", "[1]"),
            Err(RestoreError::NotAnObject("files".into()))
        );
    }

    #[test]
    fn manifests_round_trip() {
        let mut m = Manifest::new("20261202T034500123Z", "0006_backups", 5, 9);
        m.finished_at = Some(6);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
        assert_eq!(m.rows.len(), TABLES.len());
        assert!(RESTORE_ORDER.iter().all(|t| TABLES.contains(t)));
    }

    #[test]
    fn only_parts_of_pending_uploads_are_restored() {
        let uploads = [
            r#"{"_rowid":1,"id":"u1","state":"pending"}"#,
            r#"{"_rowid":2,"id":"u2","state":"committed"}"#,
            r#"{"_rowid":3,"id":"u3"}"#,
            "not json",
        ];
        let pending: std::collections::BTreeSet<String> =
            uploads.iter().filter_map(|l| pending_upload(l)).collect();
        assert_eq!(pending.into_iter().collect::<Vec<_>>(), ["u1"]);
        let pending: std::collections::BTreeSet<String> = ["u1".to_owned()].into();
        assert!(restorable_part(
            &pending,
            r#"{"upload_id":"u1","number":1}"#
        ));
        assert!(!restorable_part(
            &pending,
            r#"{"upload_id":"u2","number":1}"#
        ));
        assert!(!restorable_part(
            &pending,
            r#"{"upload_id":"u9","number":1}"#
        ));
        assert!(!restorable_part(&pending, r#"{"number":1}"#));
        assert!(!restorable_part(&pending, "[]"));
    }

    #[test]
    fn stuck_only_after_the_timeout_without_progress() {
        assert!(!stuck(1_000, 1_000, 0));
        assert!(!stuck(1_000, 61_000, 60));
        assert!(stuck(1_000, 61_001, 60));
        // A clock behind the last progress is not a stuck backup.
        assert!(!stuck(5_000, 1_000, 0));
    }
}
