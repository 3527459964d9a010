//! `cargo xtask dev|test|build`: the only entry points a person needs.
//!
//! Every command installs what it is missing first (idempotently), so a fresh machine needs
//! nothing but Rust, Node and this repository.

mod build;
mod fuzz;
mod js;
mod restore;
mod server;
mod tools;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use util::{Error, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dev [--port N]   install what is missing, build, apply migrations, and run the Worker under
                   `wrangler dev` (local R2 and D1) serving the demo page; Ctrl-C stops it
  test             checks rustc is the pinned version, then cargo fmt, the JS lint and format
                   (biome) and the widget's types (tsc), then everything `dev` needs plus
                   Chromium, clippy (host and wasm32), host unit tests, and the end-to-end
                   tests against a fresh `wrangler dev`
  build            install what is missing and build the Worker and the browser module
  e2e [FILE...]    build, then only the end-to-end tests (all, or the given test files)
  bench [SECTION...]
                   everything `test` needs, then the benchmarks against a fresh `wrangler dev`;
                   prints the tables and writes BENCHMARKS.md. Given sections, only those:
                   hash, memory, upload, worker, weight, start, multipart, uppy, many (into
                   target/bench/partial.md)
                   and cli (the `locker` CLI against curl and rclone, replacing that section)
  restore --from DIR|ID [--url URL] [--key-env NAME] [--state DIR | --remote]
                   checks a downloaded registry backup (every part's SHA-256, its row counts,
                   its schema version), then replays it into an empty D1 through wrangler (local
                   state, default .wrangler/state, or the deployed database) and checks the
                   integrity counts are 0. Given a backup's id instead of a directory, first
                   downloads it through the API of the deployment at --url (default $LOCKER_URL)
                   with the admin key in $LOCKER_KEY (or the variable --key-env names)
  d1-wipe --state DIR
                   drops every table of the local D1 in DIR (to rehearse a restore)
  fuzz [--cases N] the API fuzzer (schemathesis) against /openapi.json with an admin key, a
                   tenant key and an upload token, N cases in all (default 20000); not in `test`
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("dev") => dev(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("build") => prepare(false).map(|_| ()),
        Some("e2e") => prepare(true).and_then(|tools| server::e2e(&root(), &tools, &args[1..])),
        Some("bench") => prepare(true).and_then(|tools| server::bench(&root(), &tools, &args[1..])),
        Some("fuzz") => fuzz::cases(&args[1..]).and_then(|cases| {
            let fuzzer = fuzz::ensure_fuzzer(&root())?;
            let tools = prepare(true)?;
            fuzz::fuzz(&root(), &tools, &fuzzer, cases)
        }),
        Some(name @ ("restore" | "d1-wipe")) => restore::command(&root(), name, &args[1..]),
        Some("__reap") => server::reap(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(Error::msg(format!("unknown command\n\n{USAGE}"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives in `crates/xtask`.
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// Installs the toolchain and builds both wasm artifacts.
fn prepare(with_browser: bool) -> Result<tools::Tools> {
    let root = root();
    let tools = tools::ensure(&root, with_browser)?;
    build::worker(&root, &tools)?;
    build::web(&root, &tools)?;
    Ok(tools)
}

fn dev(args: &[String]) -> Result<()> {
    let port = match args {
        [] => None,
        [flag, n] if flag == "--port" => Some(
            n.parse::<u16>()
                .map_err(|_| Error::msg(format!("--port wants a number, got {n:?}")))?,
        ),
        _ => {
            return Err(Error::msg(format!(
                "unexpected arguments {args:?}\n\n{USAGE}"
            )))
        }
    };
    let tools = prepare(false)?;
    let root = root();
    let state = root.join(".wrangler").join("state");
    let port = match port {
        Some(p) => p,
        None => util::port_or_free(8787)?,
    };
    // The secrets live beside the local state, outside the repository, made once.
    let secrets_file = state.join("secrets.env");
    if server::Secrets::read(&secrets_file).is_none() {
        server::Secrets::generate()?.write(&secrets_file)?;
    }
    let server = server::Server::start(
        &root,
        &tools,
        &state,
        port,
        &secrets_file,
        &[(server::DEMO_VAR, "on")],
        server::Log::Inherit,
    )?;
    println!();
    println!("  locker is running: {}/", server.url());
    println!("  health:            {}/healthz", server.url());
    println!("  local state:       {}", state.display());
    println!(
        "  admin key:         in {} (LOCKER_ADMIN_KEY)",
        secrets_file.display()
    );
    println!("  stop with Ctrl-C");
    println!();
    server.wait()
}

fn test(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err(Error::msg(format!(
            "unexpected arguments {args:?}\n\n{USAGE}"
        )));
    }
    let root = root();
    // fmt and clippy verdicts change between rustc versions: CI and a person run the same one.
    util::step("rustc version")?;
    tools::check_rustc(&root, true)?;
    // Checks that need no build come first: a formatting slip fails in seconds, not minutes.
    util::step("cargo fmt --check")?;
    util::cargo(&root, &["fmt", "--all", "--", "--check"])?;
    js::check(&root)?;
    let tools = prepare(true)?;
    util::step("clippy (host)")?;
    util::cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    util::step("clippy (wasm32)")?;
    util::cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--exclude",
            "xtask",
            // The Rust client and the CLI run on servers (tokio, reqwest, files): host only.
            "--exclude",
            "locker-client",
            "--exclude",
            "locker-cli",
            // The hash benchmark's native SHA-256: a host binary.
            "--exclude",
            "native-sha256",
            "--target",
            build::WASM_TARGET,
            "--",
            "-D",
            "warnings",
        ],
    )?;
    util::step("host unit tests")?;
    util::cargo(&root, &["test", "--workspace"])?;
    util::step("end-to-end tests")?;
    server::e2e(&root, &tools, &[])
}
