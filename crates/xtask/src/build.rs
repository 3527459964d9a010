//! Builds the two wasm artifacts, skipping each when its output is newer than its sources.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::Tools;
use crate::util::{cargo, run, step, up_to_date, Result};

pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where the browser module's JS glue and wasm go (git-ignored, served as static assets).
pub(crate) const WEB_PKG: &str = "www/pkg";

/// What a wasm crate is built from: its own sources (not its build output), core, and the
/// workspace settings.
fn sources(root: &Path, krate: &str) -> Vec<PathBuf> {
    let dir = root.join("crates").join(krate);
    vec![
        dir.join("src"),
        dir.join("Cargo.toml"),
        // Files a crate embeds with include_str!.
        dir.join("openapi.json"),
        root.join("crates/locker-core/src"),
        root.join("crates/locker-core/Cargo.toml"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join(".cargo/config.toml"),
    ]
}

fn fresh(output: &Path, inputs: &[PathBuf], what: &str) -> bool {
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let fresh = up_to_date(output, &inputs);
    if fresh {
        println!("{what}: up to date");
    }
    fresh
}

/// `worker-build --release`: cargo build, wasm-bindgen, wasm-opt, and the JS shim.
pub(crate) fn worker(root: &Path, tools: &Tools) -> Result<()> {
    step("build the Worker")?;
    let krate = root.join("crates/locker-worker");
    let output = krate.join("build/index_bg.wasm");
    if fresh(&output, &sources(root, "locker-worker"), "worker") {
        return Ok(());
    }
    run(Command::new(&tools.worker_build)
        .current_dir(&krate)
        .arg("--release")
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env("WASM_OPT_BIN", &tools.wasm_opt))?;
    // worker-build keeps the name section (146 KB of function names): the Worker runs without.
    wasm_opt(tools, &["--strip-debug", "--strip-producers"], &output)
}

/// `wasm-opt ARGS FILE -o FILE`, with the wasm features our builds use.
fn wasm_opt(tools: &Tools, args: &[&str], file: &Path) -> Result<()> {
    run(Command::new(&tools.node)
        .arg(&tools.wasm_opt)
        .args(args)
        .args([
            "--enable-simd",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ])
        .arg(file)
        .arg("-o")
        .arg(file))
}

/// The browser module: cargo build, `wasm-bindgen --target web` into www/pkg, wasm-opt.
pub(crate) fn web(root: &Path, tools: &Tools) -> Result<()> {
    step("build the browser module")?;
    let out_dir = root.join(WEB_PKG);
    let output = out_dir.join("locker_web_bg.wasm");
    // This recipe is an input too: its profile settings change the module.
    let mut inputs = sources(root, "locker-web");
    inputs.push(root.join("crates/xtask/src/build.rs"));
    if fresh(&output, &inputs, "browser module") {
        return Ok(());
    }
    cargo(
        root,
        &[
            "build",
            "--package",
            "locker-web",
            "--target",
            WASM_TARGET,
            "--release",
            // The module's dependencies built for size, as its own code is (Cargo.toml); sha2
            // keeps its opt-level 3 from Cargo.toml (a named package wins over "*"): 120.6 ->
            // 110.6 KB gzip, hashing as fast (BENCHMARKS.md, hashing). Here and not in
            // Cargo.toml because the Worker shares those dependencies and is not built for size.
            "--config",
            "profile.release.package.\"*\".opt-level=\"z\"",
        ],
    )?;
    let wasm = root
        .join("target")
        .join(WASM_TARGET)
        .join("release/locker_web.wasm");
    run(Command::new(&tools.wasm_bindgen)
        .arg("--target")
        .arg("web")
        .arg("--out-dir")
        .arg(&out_dir)
        .arg(&wasm))?;
    wasm_opt(
        tools,
        &["-O3", "--strip-debug", "--strip-producers"],
        &output,
    )
}

/// The `locker` CLI (host), for the e2e tests (debug: fast to build, and the tests measure
/// behaviour, not speed) or the benchmarks (release). Cargo skips it when nothing changed.
pub(crate) fn cli(root: &Path, release: bool) -> Result<PathBuf> {
    step(&format!(
        "cargo build -p locker-cli{}",
        if release { " --release" } else { "" }
    ))?;
    let mut args = vec!["build", "-p", "locker-cli"];
    if release {
        args.push("--release");
    }
    cargo(root, &args)?;
    let profile = if release { "release" } else { "debug" };
    Ok(root.join("target").join(profile).join("locker"))
}
