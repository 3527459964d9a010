//! Process supervision: children in process groups of their own that always end with xtask.
//!
//! wrangler is node -> node -> workerd (+ esbuild); killing the first node alone leaves the
//! rest running and holding the port. So a server starts in a process group of its own, and a
//! small reaper process (this binary, `__reap`) holds the read end of a pipe whose write end
//! only xtask has: when xtask ends for any reason, even SIGKILL, the pipe closes and the reaper
//! ends the whole group. Both live outside the terminal's process group, so Ctrl-C reaches
//! xtask alone and the shutdown goes through that one path.

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Error, Result};

/// A child in a process group of its own, ended with the whole group: by [`Group::stop`], on
/// drop, or by the reaper when xtask dies.
pub(super) struct Group {
    child: Child,
    /// Dropping this closes the reaper's pipe, which ends the process group.
    reaper: Option<(Child, ChildStdin)>,
    stopped: bool,
}

impl Group {
    pub(super) fn spawn(cmd: &mut Command, what: &str) -> Result<Self> {
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

    /// The leader's exit status if it has exited; the group then counts as stopped, so that
    /// nothing signals a process group id the kernel may already have reused.
    pub(super) fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child.try_wait()?;
        if status.is_some() {
            self.stopped = true;
        }
        Ok(status)
    }

    /// Blocks until the leader exits by itself (same reasoning as [`Group::try_wait`]).
    pub(super) fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child.wait()?;
        self.stopped = true;
        Ok(status)
    }

    /// SIGTERM to the group, then SIGKILL for whatever is left after 10 s.
    pub(super) fn stop(&mut self) {
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
pub(crate) fn reap(args: &[String]) -> Result<()> {
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

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub(super) fn wait_listening(port: u16, timeout: Duration, what: &str) -> Result<()> {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > timeout {
            return Err(Error::msg(format!(
                "{what} did not listen within {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
