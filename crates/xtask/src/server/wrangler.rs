//! The Worker under `wrangler dev`: its secrets, the local D1 migrations, starting it and
//! knowing when it is ready.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::Group;
use crate::tools::Tools;
use crate::util::{free_port, random_hex, run, step, Error, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Turns on the demo page's token and echo routes (never set in wrangler.toml).
pub(crate) const DEMO_VAR: &str = "LOCKER_DEMO";

/// A running `wrangler dev`.
pub(crate) struct Server {
    group: Group,
    port: u16,
}

/// Where wrangler's output goes.
pub(crate) enum Log {
    /// The terminal (for `dev`).
    Inherit,
    /// A file (for tests, whose own output must stay readable).
    File(PathBuf),
}

fn wrangler(root: &Path, tools: &Tools) -> Command {
    let mut cmd = Command::new(&tools.node);
    cmd.arg(&tools.wrangler_js)
        .current_dir(root)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .stdin(Stdio::null());
    cmd
}

impl Server {
    /// Applies the migrations to `state`, starts `wrangler dev` on `port` with the secrets in
    /// `secrets` (an env file, so wrangler shows them as hidden) and `vars`, and waits until
    /// `/healthz` answers.
    pub(crate) fn start(
        root: &Path,
        tools: &Tools,
        state: &Path,
        port: u16,
        secrets: &Path,
        vars: &[(&str, &str)],
        log: Log,
    ) -> Result<Self> {
        step("apply D1 migrations (local)")?;
        run(wrangler(root, tools)
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(state))?;

        step(&format!("start wrangler dev on 127.0.0.1:{port}"))?;
        let inspector = free_port()?;
        let mut cmd = wrangler(root, tools);
        cmd.args(["dev", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--inspector-port")
            .arg(inspector.to_string())
            .arg("--persist-to")
            .arg(state)
            // GET /__scheduled runs the cron handler on demand (local development only).
            .arg("--test-scheduled")
            .arg("--env-file")
            .arg(secrets);
        for (name, value) in vars {
            cmd.arg("--var").arg(format!("{name}:{value}"));
        }
        if let Log::File(path) = &log {
            let file = File::create(path)?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        let mut server = Self {
            group: Group::spawn(&mut cmd, "wrangler")?,
            port,
        };
        server.wait_ready(&log)?;
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Blocks until wrangler exits by itself (Ctrl-C ends xtask, and the reaper the rest).
    pub(crate) fn wait(mut self) -> Result<()> {
        let status = self.group.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::msg(format!("wrangler dev exited ({status})")))
        }
    }

    fn wait_ready(&mut self, log: &Log) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.group.try_wait()? {
                return Err(Error::msg(format!(
                    "wrangler dev exited before it was ready ({status}){}",
                    tail(log)
                )));
            }
            if healthz_status(self.port).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(Error::msg(format!(
            "wrangler dev did not answer on port {} within {}s{}",
            self.port,
            READY_TIMEOUT.as_secs(),
            tail(log)
        )))
    }
}

/// The status code of `GET /healthz`, or `None` if nothing answers yet.
pub(crate) fn healthz_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

fn tail(log: &Log) -> String {
    let Log::File(path) = log else {
        return String::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    format!(
        "\n--- last lines of {} ---\n{}",
        path.display(),
        lines[start..].join("\n")
    )
}

/// The Worker's two secrets, random per environment.
pub(crate) struct Secrets {
    pub signing_key: String,
    pub admin_key: String,
}

impl Secrets {
    pub(crate) fn generate() -> Result<Self> {
        Ok(Self {
            signing_key: random_hex(32)?,
            admin_key: random_hex(32)?,
        })
    }

    /// Reads an env file written by [`Secrets::write`].
    pub(crate) fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let get = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        };
        Some(Self {
            signing_key: get("LOCKER_SIGNING_KEY")?,
            admin_key: get("LOCKER_ADMIN_KEY")?,
        })
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            path,
            format!(
                "LOCKER_SIGNING_KEY={}\nLOCKER_ADMIN_KEY={}\n",
                self.signing_key, self.admin_key
            ),
        )?;
        Ok(())
    }
}
