//! Small helpers: one error type, running commands, files' ages, free ports, random hex.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// Every failure of a task, as a sentence for the person who ran it.
#[derive(Debug)]
pub(crate) struct Error(String);

impl Error {
    pub(crate) fn msg(s: impl Into<String>) -> Self {
        Self(s.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Prints a step header so a long log shows where it is.
pub(crate) fn step(name: &str) -> Result<()> {
    println!("\n==> {name}");
    Ok(())
}

/// Runs a command to completion, inheriting stdout/stderr; non-zero exit is an error.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = describe(cmd);
    let status = cmd
        .status()
        .map_err(|e| Error::msg(format!("could not start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::msg(format!("`{shown}` failed ({status})")))
    }
}

/// Runs a command and returns its stdout, or `None` if it cannot start or fails.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo ARGS` in the workspace root, with the same cargo that runs xtask.
pub(crate) fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo).current_dir(root).args(args))
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// The newest modification time among `paths` (files, or directories walked recursively).
/// Missing paths are skipped.
pub(crate) fn newest_mtime(paths: &[&Path]) -> Option<SystemTime> {
    let mut newest: Option<SystemTime> = None;
    let mut stack: Vec<std::path::PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = Some(newest.map_or(modified, |n| n.max(modified)));
        }
    }
    newest
}

/// Whether `output` exists and is newer than every input.
pub(crate) fn up_to_date(output: &Path, inputs: &[&Path]) -> bool {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return false;
    };
    newest_mtime(inputs).is_some_and(|newest| newest <= built)
}

/// A port nobody listens on right now (the kernel picks it).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// `preferred` if it is free, else any free port.
pub(crate) fn port_or_free(preferred: u16) -> Result<u16> {
    if TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        Ok(preferred)
    } else {
        free_port()
    }
}

/// `bytes` random bytes from the kernel, as lowercase hex (secrets and keys of throw-away
/// servers).
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
