//! `cargo xtask restore`: a registry backup (locker-core::backup) back into an empty D1, through
//! wrangler; and `cargo xtask d1-wipe`, which empties a local D1 (for the restore test, and
//! for rehearsing a restore).
//!
//! `--from` is a downloaded backup's directory, or a backup's id: then the manifest and every
//! part are first downloaded through the deployment's API (`GET /v1/backups/{id}` with the
//! admin key, then its short-lived URL) into a temporary directory, and restored from there
//! exactly as a directory is: nothing downloaded is trusted before the same checks.
//!
//! Everything is checked before anything is written: the manifest's format and schema version
//! (a backup of a newer schema than this checkout's migrations is refused), every part's size
//! and SHA-256, that each part decompresses to the rows the manifest counts, and that each row
//! becomes a plain INSERT. Then the migrations are applied, the database must be empty, the rows
//! go in as one file of statements, and the integrity counts of `GET /v1/stats` must all be 0.

use std::collections::{BTreeMap, BTreeSet};
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

/// Parses `restore --from DIR|ID [--url URL] [--key-env NAME] [--state DIR | --remote]` and
/// `d1-wipe --state DIR`.
pub(crate) fn command(root: &Path, name: &str, args: &[String]) -> Result<()> {
    let mut from = None;
    let mut url = None;
    let mut key_env = "LOCKER_KEY".to_owned();
    let mut target = Target::Local(root.join(".wrangler").join("state"));
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--from" => from = it.next().cloned(),
            "--url" => {
                url = Some(
                    it.next()
                        .ok_or_else(|| Error::msg("--url wants the deployment's URL"))?
                        .clone(),
                );
            }
            "--key-env" => {
                key_env = it
                    .next()
                    .ok_or_else(|| Error::msg("--key-env wants a variable's name"))?
                    .clone();
            }
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
    let from = from.ok_or_else(|| {
        Error::msg("restore wants --from DIR (a downloaded backup) or --from ID (a backup's id)")
    })?;
    let dir = PathBuf::from(&from);
    if dir.is_dir() {
        return restore(root, &dir, &target);
    }
    if !backup::valid_id(&from) {
        return Err(Error::msg(format!(
            "--from {from:?} is neither a directory nor a backup id (like 20261202T031700123Z)"
        )));
    }
    let url = url
        .or_else(|| std::env::var("LOCKER_URL").ok())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::msg(
                "restore --from ID wants the deployment's URL: --url URL or LOCKER_URL in the \
                 environment",
            )
        })?;
    let key = std::env::var(&key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Error::msg(format!(
                "restore --from ID wants the deployment's admin key in ${key_env} (or name \
                 another variable with --key-env NAME)"
            ))
        })?;
    let dir = download(root, &url, &key, &key_env, &from)?;
    let restored = restore(root, &dir, &target);
    if restored.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    restored
}

/// Downloads backup `id` through the API (node's `fetch`, which the toolchain has anyway, with
/// TLS for a deployed Worker): the answer of `GET /v1/backups/{id}`, then with its URL the
/// manifest and every part the manifest lists. Prints one JSON line: `{"status", "body"}` when
/// the API refuses, `{"status": 200, "state", "parts"}` once everything is written.
const DOWNLOAD_JS: &str = r#"
const fs = require("node:fs");
const path = require("node:path");
const { LOCKER_URL_BASE: base, LOCKER_BACKUP_KEY: key, LOCKER_BACKUP_ID: id,
        LOCKER_BACKUP_DIR: dir } = process.env;
(async () => {
  const res = await fetch(`${base.replace(/\/+$/, "")}/v1/backups/${id}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  const text = await res.text();
  if (res.status !== 200) {
    process.stdout.write(JSON.stringify({ status: res.status, body: text }));
    return;
  }
  const answer = JSON.parse(text);
  if (answer.state !== "complete") {
    process.stdout.write(JSON.stringify({ status: 200, state: answer.state, parts: 0 }));
    return;
  }
  const get = async (part) => {
    const url = part ? `${answer.url}&part=${encodeURIComponent(part)}` : answer.url;
    const got = await fetch(url);
    if (got.status !== 200) throw new Error(`${part ?? "manifest.json"}: ${got.status} ${await got.text()}`);
    return Buffer.from(await got.arrayBuffer());
  };
  const manifest = await get(null);
  fs.writeFileSync(path.join(dir, "manifest.json"), manifest);
  const parts = JSON.parse(manifest.toString("utf8")).parts ?? [];
  for (const part of parts) {
    if (!/^[0-9A-Za-z_.-]+$/.test(part.name) || part.name.startsWith(".")) throw new Error(`part name ${part.name}`);
    fs.writeFileSync(path.join(dir, part.name), await get(part.name));
  }
  process.stdout.write(JSON.stringify({ status: 200, state: answer.state, parts: parts.length }));
})().catch((e) => {
  process.stderr.write(`${e?.message ?? e}${e?.cause ? `: ${e.cause.message ?? e.cause}` : ""}\n`);
  process.exit(2);
});
"#;

fn download(root: &Path, url: &str, key: &str, key_env: &str, id: &str) -> Result<PathBuf> {
    step(&format!("download backup {id} from {url}"))?;
    let dir = std::env::temp_dir().join(format!("locker-backup-{id}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = Command::new(tools::node(root))
        .args(["-e", DOWNLOAD_JS])
        .env("LOCKER_URL_BASE", url)
        .env("LOCKER_BACKUP_KEY", key)
        .env("LOCKER_BACKUP_ID", id)
        .env("LOCKER_BACKUP_DIR", &dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::msg(format!("could not start node: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(Error::msg(format!(
            "downloading backup {id} from {url} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let answer: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| Error::msg(format!("the download's answer is not JSON ({e}): {stdout}")))?;
    let status = answer.get("status").and_then(Value::as_u64).unwrap_or(0);
    let body = answer
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The API's own words, when it answered with its error shape.
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect());
    let refused = match status {
        200 => None,
        401 => Some(format!(
            "the key in ${key_env} was refused by {url} (401: {said})"
        )),
        403 => Some(format!(
            "the key in ${key_env} is not {url}'s admin key; only the deployment's admin key \
             reads backups (403: {said})"
        )),
        404 => Some(format!("{url} has no backup {id} (404: {said})")),
        other => Some(format!(
            "GET {url}/v1/backups/{id} answered {other}: {said}"
        )),
    };
    let state = answer.get("state").and_then(Value::as_str).unwrap_or("");
    let refused = refused.or_else(|| {
        (state != "complete")
            .then(|| format!("backup {id} is {state}; only a complete backup is restored"))
    });
    if let Some(why) = refused {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(Error::msg(format!("restore refused: {why}")));
    }
    println!(
        "downloaded backup {id}: the manifest and {} parts into {}",
        answer.get("parts").and_then(Value::as_u64).unwrap_or(0),
        dir.display()
    );
    Ok(dir)
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
    let mut pending_uploads = BTreeSet::new();
    let mut part_lines = Vec::new();
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
            if part.table == "uploads" {
                pending_uploads.extend(backup::pending_upload(line));
            } else if part.table == "upload_parts" {
                part_lines.push(line.to_owned());
            }
            list.push(
                backup::insert_sql(&part.table, line)
                    .map_err(|e| refuse(format!("part {}: {e}", part.name)))?,
            );
        }
        *rows.entry(part.table.as_str()).or_insert(0) += part.rows;
    }
    // Parts only of uploads the backup holds as pending (see `backup::restorable_part`): the
    // others name an upload that ended, or one the backup does not hold.
    if let Some(list) = statements.get_mut("upload_parts") {
        let kept: Vec<String> = part_lines
            .iter()
            .filter(|l| backup::restorable_part(&pending_uploads, l))
            .map(|l| backup::insert_sql("upload_parts", l))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| refuse(format!("upload_parts: {e}")))?;
        if kept.len() < part_lines.len() {
            println!(
                "upload_parts: {} of {} rows are of uploads not pending in the backup, left out",
                part_lines.len() - kept.len(),
                part_lines.len()
            );
        }
        *list = kept;
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
        let right = match table.as_str() {
            "blobs" => have >= *expected,
            // Only the parts of pending uploads are written.
            "upload_parts" => have <= *expected,
            _ => have == *expected,
        };
        if !right {
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
