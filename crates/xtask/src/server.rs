//! Runs the Worker under `wrangler dev` and guarantees it stops.
//!
//! wrangler is node -> node -> workerd (+ esbuild); killing the first node alone leaves the
//! rest running and holding the port. So wrangler starts in a process group of its own, and a
//! small reaper process (this binary, `__reap`) holds the read end of a pipe whose write end
//! only xtask has: when xtask ends for any reason, even SIGKILL, the pipe closes and the reaper
//! ends the whole group. Both live outside the terminal's process group, so Ctrl-C reaches
//! xtask alone and the shutdown goes through that one path.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools::Tools;
use crate::util::{free_port, run, step, Error, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A child in a process group of its own, ended with the whole group: by [`Group::stop`], on
/// drop, or by the reaper when xtask dies.
struct Group {
    child: Child,
    /// Dropping this closes the reaper's pipe, which ends the process group.
    reaper: Option<(Child, ChildStdin)>,
    stopped: bool,
}

impl Group {
    fn spawn(cmd: &mut Command, what: &str) -> Result<Self> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|e| Error::msg(format!("could not start {what}: {e}")))?;
        let mut group = Self {
            child,
            reaper: None,
            stopped: false,
        };
        group.reaper = Some(spawn_reaper(group.child.id())?);
        Ok(group)
    }

    /// SIGTERM to the group, then SIGKILL for whatever is left after 10 s.
    fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let group = self.child.id();
            signal_group(group, "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while group_alive(group) && Instant::now() < deadline {
                let _ = self.child.try_wait();
                std::thread::sleep(Duration::from_millis(100));
            }
            signal_group(group, "KILL");
            let _ = self.child.wait();
        }
        if let Some((mut reaper, pipe)) = self.reaper.take() {
            drop(pipe);
            let _ = reaper.wait();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `wrangler dev`.
pub struct Server {
    group: Group,
    port: u16,
}

/// Where wrangler's output goes.
pub enum Log {
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
    pub fn start(
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Blocks until wrangler exits by itself (Ctrl-C ends xtask, and the reaper the rest).
    pub fn wait(mut self) -> Result<()> {
        let status = self.group.child.wait()?;
        self.group.stopped = true;
        if status.success() {
            Ok(())
        } else {
            Err(Error::msg(format!("wrangler dev exited ({status})")))
        }
    }

    fn wait_ready(&mut self, log: &Log) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.group.child.try_wait()? {
                self.group.stopped = true;
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

/// An independent S3-compatible server (s3s-fs) on loopback, for the direct-to-storage tests:
/// it checks SigV4 presigned signatures and `x-amz-checksum-sha256` itself.
pub struct S3Server {
    _group: Group,
    pub url: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The bucket the e2e tests register as an `s3` bucket (a folder of the s3s-fs root).
pub const E2E_S3_BUCKET: &str = "e2e-direct";

impl S3Server {
    pub fn start(bin: &Path, root: &Path, log: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join(E2E_S3_BUCKET))?;
        let port = free_port()?;
        let (access_key, secret_key) = (random_hex(10)?, random_hex(20)?);
        step(&format!("start s3s-fs on 127.0.0.1:{port}"))?;
        let file = File::create(log)?;
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let group = Group::spawn(&mut cmd, "s3s-fs")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(Error::msg("s3s-fs did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            _group: group,
            url: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
        })
    }

    /// Starts s3s-fs over `root` and adds the bucket's credentials to the Worker's secrets
    /// file, named as the Worker reads them.
    pub fn start_for_worker(
        tools: &Tools,
        root: &Path,
        log: &Path,
        secrets: &Path,
    ) -> Result<Self> {
        let s3 = Self::start(&tools.s3s_fs, root, log)?;
        let (key, secret) = locker_core::s3::credential_secrets(E2E_S3_BUCKET);
        let mut env_file = std::fs::read_to_string(secrets)?;
        env_file.push_str(&format!(
            "{key}={}\n{secret}={}\n",
            s3.access_key, s3.secret_key
        ));
        std::fs::write(secrets, env_file)?;
        Ok(s3)
    }

    /// What the node scripts need to reach it (tests/support/s3.mjs).
    pub fn env(&self, cmd: &mut Command, root: &Path) {
        cmd.env("LOCKER_S3_URL", &self.url)
            .env("LOCKER_S3_BUCKET", E2E_S3_BUCKET)
            .env("LOCKER_S3_ROOT", root)
            .env("LOCKER_S3_SECRET_KEY", &self.secret_key);
    }
}

fn spawn_reaper(group: u32) -> Result<(Child, ChildStdin)> {
    let exe = std::env::current_exe()?;
    let mut reaper = Command::new(exe)
        .arg("__reap")
        .arg(group.to_string())
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pipe = reaper
        .stdin
        .take()
        .ok_or_else(|| Error::msg("reaper has no stdin"))?;
    Ok((reaper, pipe))
}

/// `xtask __reap GROUP`: waits for stdin to close, then ends process group GROUP.
pub fn reap(args: &[String]) -> Result<()> {
    let group: u32 = args
        .first()
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| Error::msg("__reap wants a process group id"))?;
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    // Nothing is ever written: read returns 0 (EOF) or an error only when xtask is gone.
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    if group_alive(group) {
        signal_group(group, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal_group(group, "KILL");
    }
    Ok(())
}

fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{group}"))
        .stderr(Stdio::null())
        .status();
}

fn group_alive(group: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The status code of `GET /healthz`, or `None` if nothing answers yet.
pub fn healthz_status(port: u16) -> Option<u16> {
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

/// A throw-away environment for one node script: s3s-fs and a fresh `wrangler dev`, each on its
/// own port, with state, secrets and logs under `target/{name}`; `node` set up to reach both
/// (LOCKER_URL, LOCKER_STATE, LOCKER_ADMIN_KEY, the S3 variables, CHROMIUM), completed by
/// `script` and run; everything stopped and removed afterwards, whatever happens.
pub fn staged(
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

/// The end-to-end suite: the node test runner over tests/*.test.mjs in a [`staged`]
/// environment, then the counts of passed and failed tests.
/// Runs the end-to-end tests: `files` (paths of test files), or every `tests/**/*.test.mjs`.
pub fn e2e(root: &Path, tools: &Tools, files: &[String]) -> Result<()> {
    let tap = root
        .join("target/e2e")
        .join(format!("e2e-{}.tap", std::process::id()));
    // A grace of one second, so the expiry test need not wait an hour.
    let vars = [
        ("LOCKER_CORS_ORIGINS", E2E_CORS_ORIGIN),
        (DEMO_VAR, "on"),
        ("LOCKER_COMPLETE_GRACE_S", "1"),
    ];
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
        .env("E2E_OUTPUT", out);
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

/// Turns on the demo page's token and echo routes (never set in wrangler.toml).
pub const DEMO_VAR: &str = "LOCKER_DEMO";

/// The origin the e2e tests use for cross-origin (CORS) requests.
const E2E_CORS_ORIGIN: &str = "https://app.example";

/// The Worker's two secrets, random per environment.
pub struct Secrets {
    pub signing_key: String,
    pub admin_key: String,
}

impl Secrets {
    pub fn generate() -> Result<Self> {
        Ok(Self {
            signing_key: random_hex(32)?,
            admin_key: random_hex(32)?,
        })
    }

    /// Reads an env file written by [`Secrets::write`].
    pub fn read(path: &Path) -> Option<Self> {
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

    pub fn write(&self, path: &Path) -> Result<()> {
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

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// `cargo xtask bench`: the benchmark script in a [`staged`] environment (like the e2e run);
/// it measures, prints the tables and writes BENCHMARKS.md.
pub fn bench(root: &Path, tools: &Tools) -> Result<()> {
    staged(root, tools, "bench", &[(DEMO_VAR, "on")], |cmd, out| {
        step("node tests/bench/bench.mjs")?;
        cmd.arg("tests/bench/bench.mjs")
            .env("BENCH_OUT", out)
            .env("WASM_BINDGEN", &tools.wasm_bindgen)
            .env("WASM_OPT", &tools.wasm_opt)
            .env("BENCH_COMMAND", "cargo xtask bench");
        Ok(())
    })
}
