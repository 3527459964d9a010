//! Node scripts run against throw-away servers: the end-to-end tests and the benchmarks.

use std::path::Path;
use std::process::Command;

use super::s3::S3Server;
use super::wrangler::{Log, Secrets, Server, DEMO_VAR};
use crate::tools::Tools;
use crate::util::{free_port, run, step, Result};

/// The origin the e2e tests use for cross-origin (CORS) requests.
const E2E_CORS_ORIGIN: &str = "https://app.example";

/// A throw-away environment for one node script: s3s-fs and a fresh `wrangler dev`, each on its
/// own port, with state, secrets and logs under `target/{name}`; `node` set up to reach both
/// (LOCKER_URL, LOCKER_STATE, LOCKER_ADMIN_KEY, the S3 variables, CHROMIUM), completed by
/// `script` and run; everything stopped and removed afterwards, whatever happens.
pub(crate) fn staged(
    root: &Path,
    tools: &Tools,
    name: &str,
    vars: &[(&str, &str)],
    script: impl FnOnce(&mut Command, &Path) -> Result<()>,
) -> Result<()> {
    let out = root.join("target").join(name);
    std::fs::create_dir_all(&out)?;
    let id = std::process::id();
    let state = out.join(format!("state-{id}"));
    let log = out.join(format!("wrangler-{id}.log"));
    let secrets_file = out.join(format!("secrets-{id}.env"));
    let s3_root = out.join(format!("s3-{id}"));
    let secrets = Secrets::generate()?;
    secrets.write(&secrets_file)?;
    let outcome = (|| {
        let s3 = S3Server::start_for_worker(
            tools,
            &s3_root,
            &out.join(format!("s3s-fs-{id}.log")),
            &secrets_file,
        )?;
        let server = Server::start(
            root,
            tools,
            &state,
            free_port()?,
            &secrets_file,
            vars,
            Log::File(log.clone()),
        )?;
        let mut cmd = Command::new(&tools.node);
        cmd.current_dir(root)
            .env("LOCKER_URL", server.url())
            .env("LOCKER_STATE", &state)
            .env("LOCKER_ADMIN_KEY", &secrets.admin_key);
        s3.env(&mut cmd, &s3_root);
        if let Some(chromium) = &tools.chromium {
            cmd.env("CHROMIUM", chromium);
        }
        script(&mut cmd, &out)?;
        let result = run(&mut cmd);
        drop(server);
        result
    })();
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&s3_root);
    let _ = std::fs::remove_file(&secrets_file);
    if outcome.is_err() {
        println!("wrangler's log: {}", log.display());
    }
    outcome
}

/// The end-to-end suite: the node test runner over `files` (paths of test files), or every
/// `tests/**/*.test.mjs`, in a [`staged`] environment, then the counts of passed and failed
/// tests.
pub(crate) fn e2e(root: &Path, tools: &Tools, files: &[String]) -> Result<()> {
    let tap = root
        .join("target/e2e")
        .join(format!("e2e-{}.tap", std::process::id()));
    // A grace of one second, so the expiry test need not wait an hour. Objects in parts above
    // 32 MiB are checked by the scheduled run (`verifying`), so the tests reach that state
    // without gigabytes: every multipart test file is at most 24 MiB, except the 300 MiB ones.
    let vars = [
        ("LOCKER_CORS_ORIGINS", E2E_CORS_ORIGIN),
        (DEMO_VAR, "on"),
        ("LOCKER_COMPLETE_GRACE_S", "1"),
        // Small backup pages, few per run: the backup tests see a backup span several runs.
        ("LOCKER_BACKUP_PAGE_ROWS", "50"),
        ("LOCKER_BACKUP_PAGES_PER_RUN", "8"),
        // A backup without progress for 15 s is stuck: the next run abandons it.
        ("LOCKER_BACKUP_STUCK_S", "15"),
        // Access-log rows older than 20 s leave D1 once a backup holds them.
        ("LOCKER_LOG_RETENTION_S", "20"),
        // The reconciler: orphans older than 10 s go, and one run looks at every object.
        ("LOCKER_ORPHAN_GRACE_S", "10"),
        ("LOCKER_RECONCILE_BATCH", "1000"),
        // Uploads in parts above 32 MiB are `verifying` (tests/verifying.test.mjs).
        ("LOCKER_VERIFY_INLINE_MAX", "33554432"),
        // Moves take two blobs a run and leave blobs over 3 MB (tests/moves.test.mjs).
        ("LOCKER_MOVE_BATCH", "2"),
        ("LOCKER_MOVE_MAX_BLOB", "3000000"),
    ];
    let cli = crate::build::cli(root, false)?;
    let outcome = staged(root, tools, "e2e", &vars, |cmd, out| {
        step("node --test tests/**/*.test.mjs")?;
        cmd.args([
            "--test",
            "--test-concurrency=1",
            "--test-timeout=300000",
            "--test-reporter=spec",
            "--test-reporter-destination=stdout",
            "--test-reporter=tap",
        ])
        .arg(format!("--test-reporter-destination={}", tap.display()))
        .args(if files.is_empty() {
            vec!["tests/**/*.test.mjs".to_owned()]
        } else {
            files.to_vec()
        })
        .env("LOCKER_CORS_ORIGIN", E2E_CORS_ORIGIN)
        .env("LOCKER_CLI", &cli)
        .env("E2E_OUTPUT", out)
        // The backup tests run `xtask d1-wipe` and `xtask restore` on the server's state.
        .env("LOCKER_XTASK", std::env::current_exe()?);
        Ok(())
    });
    let counts = std::fs::read_to_string(&tap).unwrap_or_default();
    let count = |key: &str| {
        counts
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    println!(
        "\ne2e: {} passed, {} failed",
        count("# pass "),
        count("# fail ")
    );
    outcome
}

/// `cargo xtask bench`: the benchmark scripts in a [`staged`] environment each (like the e2e
/// run); they measure, print the tables and write BENCHMARKS.md. Given `sections`, only those:
/// `cli` is the `locker` CLI's section (against curl and rclone), which replaces that section
/// of BENCHMARKS.md; the others are sections of bench.mjs (which checks their names), run
/// without touching BENCHMARKS.md.
pub(crate) fn bench(root: &Path, tools: &Tools, sections: &[String]) -> Result<()> {
    let with_cli = sections.is_empty() || sections.iter().any(|s| s == "cli");
    // Built first, so that a failing build fails before the long page benchmarks.
    let cli = if with_cli {
        Some(crate::build::cli(root, true)?)
    } else {
        None
    };
    let with_hash = sections.is_empty() || sections.iter().any(|s| s == "hash");
    let natives = if with_hash {
        crate::build::native_sha256(root)?
    } else {
        Vec::new()
    };
    let page: Vec<&str> = sections
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "cli")
        .collect();
    if sections.is_empty() || !page.is_empty() {
        // LOCKER_D1_METER: each answer names its D1 work, for the table of the worker section.
        let vars = [(DEMO_VAR, "on"), ("LOCKER_D1_METER", "on")];
        staged(root, tools, "bench", &vars, |cmd, out| {
            step("node tests/bench/bench.mjs")?;
            cmd.arg("tests/bench/bench.mjs")
                .env("BENCH_OUT", out)
                .env("BENCH_ONLY", page.join(","))
                .env("WASM_BINDGEN", &tools.wasm_bindgen)
                .env("WASM_OPT", &tools.wasm_opt)
                .env("BENCH_COMMAND", "cargo xtask bench")
                .envs(natives.iter().map(|(var, path)| (var, path)));
            Ok(())
        })?;
    }
    let Some(cli) = cli else {
        return Ok(());
    };
    let rclone = crate::tools::rclone();
    staged(root, tools, "bench", &[], |cmd, out| {
        step("node tests/bench/cli-bench.mjs")?;
        cmd.arg("tests/bench/cli-bench.mjs")
            .env("BENCH_OUT", out)
            .env("LOCKER_CLI", &cli);
        if let Some(rclone) = &rclone {
            cmd.env("RCLONE", rclone);
        }
        Ok(())
    })
}
