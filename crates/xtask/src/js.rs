//! The JavaScript checks of `cargo xtask test`: Biome lints and checks the formatting of the
//! hand-written JS (biome.json says which files and rules), and tsc checks the widget's type
//! declarations (www/locker-upload.d.ts) against a usage file (crates/xtask/ts/).

use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use crate::tools;
use crate::util::{run, step, Error, Result};

pub(crate) fn check(root: &Path) -> Result<()> {
    tools::npm_packages(root)?;
    let node = tools::node(root);
    step("biome ci (JS lint and format)")?;
    let mut biome = Command::new(&node);
    // Warnings fail too: a rule biome.json keeps on is one whose findings are worth fixing.
    biome
        .current_dir(root)
        .arg("node_modules/@biomejs/biome/bin/biome")
        .args(["ci", "--error-on-warnings"]);
    // `biome ci` colours its output even into a pipe, which turns a CI log into escape codes.
    if !std::io::stdout().is_terminal() {
        biome.arg("--colors=off");
    }
    run(&mut biome).map_err(|e| {
        Error::msg(format!(
            "{e}\n`npx biome check --write` applies the formatting and the safe fixes; \
             the other findings are listed above"
        ))
    })?;
    step("tsc (the <locker-upload> type declarations)")?;
    run(Command::new(&node)
        .current_dir(root)
        .arg("node_modules/typescript/bin/tsc")
        .args(["--project", "crates/xtask/ts"]))
}
