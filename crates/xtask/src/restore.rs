//! `cargo xtask restore`: a registry backup (locker-core::backup) back into an empty D1, through
//! wrangler; and `cargo xtask d1-wipe`, which empties a local D1 (for the restore test, and
//! for rehearsing a restore).
//!
//! Everything is checked before anything is written: the manifest's format and schema version
//! (a backup of a newer schema than this checkout's migrations is refused), every part's size
//! and SHA-256, that each part decompresses to the rows the manifest counts, and that each row
//! becomes a plain INSERT. Then the migrations are applied, the database must be empty, the rows
//! go in as one file of statements, and the integrity counts of `GET /v1/stats` must all be 0.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flate2::read::GzDecoder;
use locker_core::backup::{self, Manifest, MANIFEST, RESTORE_ORDER};
use locker_core::Sha256Hex;
use serde_json::Value;

use crate::tools;
use crate::util::{step, Error, Result};

/// Where the restored database is.
pub(crate) enum Target {
    /// The local D1 of `wrangler dev` in this persist directory.
    Local(PathBuf),
    /// The deployed database (`wrangler d1 ... --remote`).
    Remote,
}

impl Target {
    fn args(&self, cmd: &mut Command) {
        match self {
            Self::Local(state) => {
                cmd.args(["--local", "--persist-to"]).arg(state);
            }
            Self::Remote => {
                cmd.arg("--remote");
            }
        }
    }
}

/// Parses `restore --from DIR [--state DIR | --remote]` and `d1-wipe --state DIR`.
pub(crate) fn command(root: &Path, name: &str, args: &[String]) -> Result<()> {
    let mut from = None;
    let mut target = Target::Local(root.join(".wrangler").join("state"));
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--from" => from = it.next().map(PathBuf::from),
            "--state" => {
                let dir = it
                    .next()
                    .ok_or_else(|| Error::msg("--state wants a directory"))?;
                target = Target::Local(PathBuf::from(dir));
            }
            "--remote" => target = Target::Remote,
            other => return Err(Error::msg(format!("unexpected argument {other:?}"))),
        }
    }
    if name == "d1-wipe" {
        let Target::Local(state) = target else {
            return Err(Error::msg("d1-wipe only empties a local D1 (--state DIR)"));
        };
        return wipe(root, &state);
    }
    let from = from.ok_or_else(|| Error::msg("restore wants --from DIR (a downloaded backup)"))?;
    restore(root, &from, &target)
}

fn wrangler(root: &Path) -> Command {
    let mut cmd = Command::new(tools::node(root));
    cmd.arg(root.join("node_modules/wrangler/bin/wrangler.js"))
        .current_dir(root)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null());
    cmd
}

/// Runs wrangler; its output is returned, and shown on failure.
fn run_wrangler(mut cmd: Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| Error::msg(format!("could not start wrangler: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(Error::msg(format!(
            "wrangler failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(stdout)
}

/// The first row of a query's answer (`wrangler d1 execute --json`).
fn query(root: &Path, target: &Target, sql: &str) -> Result<serde_json::Map<String, Value>> {
    let mut cmd = wrangler(root);
    cmd.args(["d1", "execute", "DB", "--json", "--command", sql]);
    target.args(&mut cmd);
    let out = run_wrangler(cmd)?;
    let json: Value = serde_json::from_str(out.trim())
        .map_err(|e| Error::msg(format!("wrangler's answer is not JSON ({e}): {out}")))?;
    json.get(0)
        .and_then(|r| r.get("results"))
        .and_then(|r| r.get(0))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| Error::msg(format!("wrangler answered no row: {out}")))
}

fn execute_file(root: &Path, target: &Target, file: &Path) -> Result<()> {
    let mut cmd = wrangler(root);
    cmd.args(["d1", "execute", "DB", "--yes", "--file"])
        .arg(file);
    target.args(&mut cmd);
    run_wrangler(cmd).map(|_| ())
}

fn migrate(root: &Path, target: &Target) -> Result<()> {
    let mut cmd = wrangler(root);
    cmd.args(["d1", "migrations", "apply", "DB"]);
    target.args(&mut cmd);
    run_wrangler(cmd).map(|_| ())
}

/// The newest migration of this checkout (`migrations/NNNN_*.sql`).
fn newest_migration(root: &Path) -> Result<(u32, String)> {
    let mut newest = (0, String::new());
    for entry in std::fs::read_dir(root.join("migrations"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = backup::schema_number(&name).filter(|_| name.ends_with(".sql")) {
            if n > newest.0 {
                newest = (n, name.trim_end_matches(".sql").to_owned());
            }
        }
    }
    Ok(newest)
}

/// A backup read and checked: the statements to replay, per table, in the manifest's order.
struct Checked {
    manifest: Manifest,
    statements: BTreeMap<String, Vec<String>>,
}

/// Reads the backup in `dir` and checks all of it; nothing is written.
fn check(root: &Path, dir: &Path) -> Result<Checked> {
    let refuse = |why: String| Error::msg(format!("backup in {} refused: {why}", dir.display()));
    let text = std::fs::read_to_string(dir.join(MANIFEST))
        .map_err(|e| refuse(format!("no readable {MANIFEST}: {e}")))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| refuse(format!("{MANIFEST} does not parse: {e}")))?;
    if manifest.format != backup::FORMAT {
        return Err(refuse(format!(
            "format {} (this restore reads {})",
            manifest.format,
            backup::FORMAT
        )));
    }
    if manifest.finished_at.is_none() {
        return Err(refuse("the manifest is of an unfinished backup".into()));
    }
    let schema = backup::schema_number(&manifest.schema_version)
        .ok_or_else(|| refuse(format!("schema version {:?}", manifest.schema_version)))?;
    let (newest, newest_name) = newest_migration(root)?;
    if schema > newest {
        return Err(refuse(format!(
            "it is of schema {}, newer than this checkout's migrations (up to {newest_name}); \
             restore with the checkout that wrote it",
            manifest.schema_version
        )));
    }
    let mut statements: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
    for part in &manifest.parts {
        if !backup::valid_part_name(&part.name) {
            return Err(refuse(format!("part name {:?}", part.name)));
        }
        let bytes = std::fs::read(dir.join(&part.name))
            .map_err(|e| refuse(format!("part {} is not readable: {e}", part.name)))?;
        if bytes.len() as u64 != part.bytes {
            return Err(refuse(format!(
                "part {} has {} bytes, the manifest says {}",
                part.name,
                bytes.len(),
                part.bytes
            )));
        }
        let sha = Sha256Hex::digest(&bytes).to_string();
        if sha != part.sha256 {
            return Err(refuse(format!(
                "part {} has SHA-256 {sha}, the manifest says {}",
                part.name, part.sha256
            )));
        }
        let mut text = String::new();
        GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| refuse(format!("part {} does not decompress: {e}", part.name)))?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        if lines.len() as u64 != part.rows {
            return Err(refuse(format!(
                "part {} holds {} rows, the manifest says {}",
                part.name,
                lines.len(),
                part.rows
            )));
        }
        let list = statements.entry(part.table.clone()).or_default();
        for line in lines {
            list.push(
                backup::insert_sql(&part.table, line)
                    .map_err(|e| refuse(format!("part {}: {e}", part.name)))?,
            );
        }
        *rows.entry(part.table.as_str()).or_insert(0) += part.rows;
    }
    for (table, count) in &manifest.rows {
        // Blobs may come twice (their own pages, and with the files that use them).
        let have = rows.get(table.as_str()).copied().unwrap_or(0);
        if (table == "blobs" && have < *count) || (table != "blobs" && have != *count) {
            return Err(refuse(format!(
                "{table}: the parts hold {have} rows, the manifest counts {count}"
            )));
        }
    }
    Ok(Checked {
        manifest,
        statements,
    })
}

/// The counts that must be 0 after a restore (those of `GET /v1/stats`), and the rows per table.
const INTEGRITY_SQL: &str = "SELECT \
    (SELECT COUNT(*) FROM routes x WHERE NOT EXISTS \
       (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)) AS routes_without_bucket, \
    (SELECT COUNT(*) FROM files x WHERE NOT EXISTS \
       (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)) AS files_without_bucket, \
    (SELECT COUNT(*) FROM blobs x WHERE NOT EXISTS \
       (SELECT 1 FROM buckets b WHERE b.id = x.bucket_id)) AS blobs_without_bucket, \
    (SELECT COUNT(*) FROM files x WHERE NOT EXISTS (SELECT 1 FROM blobs y \
       WHERE y.tenant = x.tenant AND y.sha256 = x.sha256 AND y.verified = 1)) \
       AS files_without_verified_blob";

fn counts_sql() -> String {
    let parts: Vec<String> = RESTORE_ORDER
        .iter()
        .map(|t| format!("(SELECT COUNT(*) FROM {t}) AS {t}"))
        .collect();
    format!("SELECT {}", parts.join(", "))
}

fn restore(root: &Path, dir: &Path, target: &Target) -> Result<()> {
    step(&format!("check the backup in {}", dir.display()))?;
    let checked = check(root, dir)?;
    let m = &checked.manifest;
    println!(
        "backup {} (schema {}): {} parts, every SHA-256 and row count as in its manifest",
        m.id,
        m.schema_version,
        m.parts.len()
    );

    step("apply the migrations; the database must be empty")?;
    migrate(root, target)?;
    let counts = query(root, target, &counts_sql())?;
    let used: Vec<String> = counts
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    if !used.is_empty() {
        return Err(Error::msg(format!(
            "the database is not empty ({}); restore only into an empty one",
            used.join(", ")
        )));
    }

    step("write the rows")?;
    let mut sql = String::new();
    for table in RESTORE_ORDER {
        for statement in checked.statements.get(table).into_iter().flatten() {
            sql.push_str(statement);
            sql.push('\n');
        }
    }
    let file = root
        .join("target")
        .join(format!("restore-{}-{}.sql", m.id, std::process::id()));
    std::fs::write(&file, sql)?;
    let written = execute_file(root, target, &file);
    let _ = std::fs::remove_file(&file);
    written?;

    step("check the restored registry")?;
    let counts = query(root, target, &counts_sql())?;
    for (table, expected) in &m.rows {
        let have = counts.get(table).and_then(Value::as_u64).unwrap_or(0);
        if (table == "blobs" && have < *expected) || (table != "blobs" && have != *expected) {
            return Err(Error::msg(format!(
                "restored {table} has {have} rows, the backup {expected}"
            )));
        }
    }
    let integrity = query(root, target, INTEGRITY_SQL)?;
    let broken: Vec<String> = integrity
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if !broken.is_empty() {
        return Err(Error::msg(format!(
            "the restored registry fails its integrity checks: {}",
            broken.join(", ")
        )));
    }
    println!(
        "restored backup {}: {}; integrity counts all 0",
        m.id,
        counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Drops every table of the local D1 in `state` (the migrations' record too): an empty database,
/// as a new deployment has.
fn wipe(root: &Path, state: &Path) -> Result<()> {
    let target = Target::Local(state.to_path_buf());
    step(&format!("empty the local D1 in {}", state.display()))?;
    let tables = query(
        root,
        &target,
        "SELECT group_concat(name, ' ') AS names FROM sqlite_master \
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
    )?;
    let names = tables
        .get("names")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Foreign keys are checked at the end of the transaction, when every table is gone.
    let mut sql = String::from("PRAGMA defer_foreign_keys = on;\n");
    for name in names.split_whitespace() {
        if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(Error::msg(format!("unexpected table name {name:?}")));
        }
        sql.push_str(&format!("DROP TABLE IF EXISTS \"{name}\";\n"));
    }
    let file = root
        .join("target")
        .join(format!("d1-wipe-{}.sql", std::process::id()));
    std::fs::write(&file, sql)?;
    let done = execute_file(root, &target, &file);
    let _ = std::fs::remove_file(&file);
    done?;
    println!("dropped: {names}");
    Ok(())
}
