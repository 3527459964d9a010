//! `cargo xtask fuzz`: schemathesis, a property-based API fuzzer, against the Worker's own
//! `/openapi.json`, with the bootstrap admin key, a tenant key and an upload token, in a
//! throw-away environment like the e2e run's. Not part of `test`: it takes minutes and its
//! inputs are random; what it finds becomes a fixed regression test instead.
//!
//! The fuzzer is a Python package: it lives in a virtualenv under `target/fuzz/`, installed
//! from `crates/xtask/fuzz/requirements.txt` (exact versions, no dependency resolution), and
//! reinstalled only when that file changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server;
use crate::tools::Tools;
use crate::util::{run, step, Error, Result};

/// Cases in a run unless `--cases` says otherwise: issue 11 asks for at least 20,000.
pub(crate) const DEFAULT_CASES: u64 = 20_000;

/// Parses `[--cases N]`.
pub(crate) fn cases(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(DEFAULT_CASES),
        [flag, n] if flag == "--cases" => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::msg(format!("--cases wants a positive number, got {n:?}"))),
        _ => Err(Error::msg(format!("unexpected arguments {args:?}"))),
    }
}

/// The `schemathesis` executable, installed if missing or out of date.
pub(crate) fn ensure_fuzzer(root: &Path) -> Result<PathBuf> {
    step("schemathesis (pinned, in target/fuzz/venv)")?;
    let requirements = root.join("crates/xtask/fuzz/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)?;
    let venv = root.join("target/fuzz/venv");
    let stamp = venv.join("locker-requirements.txt");
    let bin = venv.join("bin/schemathesis");
    let current = std::fs::read_to_string(&stamp).ok();
    if bin.exists() && current.as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    println!("installing schemathesis into {} (once)", venv.display());
    // A fresh venv: packages of an older pin must not linger.
    let _ = std::fs::remove_dir_all(&venv);
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
        ])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted)?;
    Ok(bin)
}

/// Runs crates/xtask/fuzz/run.mjs in a [`server::staged`] environment: it makes the
/// credentials, runs schemathesis once per credential and exits non-zero on any finding.
pub(crate) fn fuzz(root: &Path, tools: &Tools, schemathesis: &Path, cases: u64) -> Result<()> {
    server::staged(root, tools, "fuzz", &[], |cmd, out| {
        step(&format!("node crates/xtask/fuzz/run.mjs ({cases} cases)"))?;
        cmd.arg("crates/xtask/fuzz/run.mjs")
            .env("SCHEMATHESIS", schemathesis)
            .env("FUZZ_CASES", cases.to_string())
            .env("FUZZ_OUT", out);
        Ok(())
    })
}
