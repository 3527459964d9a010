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

/// The builds of crates/native-sha256 the hash benchmark compares the wasm kernel with: the
/// same `sha2` (Cargo.lock's version) for this host, named by the environment variable that
/// hands each binary to tests/bench/bench.mjs, and built with these rustc flags.
const NATIVE_SHA256: [(&str, &[&str]); 3] = [
    // sha2's portable Rust backend (no SHA-NI), for plain x86-64.
    ("NATIVE_SHA256_SOFT", &["--cfg", "sha2_backend=\"soft\""]),
    // The same code with every instruction this CPU has (BMI2's rorx, AVX2, ...): the
    // reference of the kernel's goal, the faster and steadier of the two here.
    (
        "NATIVE_SHA256_SOFT_NATIVE",
        &["--cfg", "sha2_backend=\"soft\"", "-C", "target-cpu=native"],
    ),
    // sha2 as it builds by default: SHA-NI when the CPU has it (checked at run time).
    ("NATIVE_SHA256_AUTO", &[]),
];

/// Builds crates/native-sha256 (release, from the lockfile) once per entry of [`NATIVE_SHA256`],
/// each in a target directory of its own so the flags do not rebuild the rest of the workspace;
/// returns each binary with the variable that names it. Cargo skips a build when nothing changed.
pub(crate) fn native_sha256(root: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    step("cargo build -p native-sha256 --release (three ways)")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut built = Vec::new();
    for (var, flags) in NATIVE_SHA256 {
        let dir = root
            .join("target/native-sha256")
            .join(var.to_ascii_lowercase());
        // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and any configured rustflags, so each
        // build has exactly these flags (none at all for the default build).
        run(Command::new(&cargo)
            .current_dir(root)
            .args(["build", "--release", "--locked", "-p", "native-sha256"])
            .env("CARGO_TARGET_DIR", &dir)
            .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}")))?;
        built.push((var, dir.join("release/native-sha256")));
    }
    Ok(built)
}
