//! Where the server and key come from: `--profile NAME` (the config file), else `LOCKER_URL` and
//! `LOCKER_KEY`, else the config file's default profile.
//!
//! The config file is TOML under the user's config directory (`LOCKER_CONFIG` names another
//! file), one profile per server:
//!
//! ```toml
//! default = "prod"
//! [profiles.prod]
//! url = "https://files.example.com"
//! key = "lk_..."
//! ```
//!
//! It holds keys, so it is written with mode 0600 (its directory 0700), and a file others can
//! read is refused, as ssh refuses such a private key. The key is never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Fail;

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) profiles: BTreeMap<String, Profile>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    pub(crate) url: String,
    pub(crate) key: String,
}

/// A server to talk to and where that was decided, for messages.
pub(crate) struct Server {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) from: String,
}

/// The config file: `LOCKER_CONFIG`, or `locker/config.toml` in the user's config directory.
pub(crate) fn config_path() -> Result<PathBuf, Fail> {
    if let Some(p) = std::env::var_os("LOCKER_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    directories::ProjectDirs::from("", "", "locker")
        .map(|d| d.config_dir().join("config.toml"))
        .ok_or_else(|| Fail::Usage("no config directory for this user: set LOCKER_CONFIG".into()))
}

impl Config {
    /// Reads the file; a missing file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<Self, Fail> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Fail::Usage(format!("cannot read {}: {e}", path.display()))),
        };
        check_private(path)?;
        toml::from_str(&text)
            .map_err(|e| Fail::Usage(format!("{} is not a valid config: {e}", path.display())))
    }

    /// Writes the file, readable by its owner only.
    pub(crate) fn save(&self, path: &Path) -> Result<(), Fail> {
        let fail =
            |e: std::io::Error| Fail::Failed(format!("cannot write {}: {e}", path.display()));
        let text = toml::to_string(self)
            .map_err(|e| Fail::Failed(format!("cannot encode the config: {e}")))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(fail)?;
        }
        // Written beside it and renamed: a crash never leaves half a file of keys.
        let tmp = path.with_extension("toml.tmp");
        write_private(&tmp, text.as_bytes()).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only when the file is created; a leftover file keeps its bits otherwise.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Fail> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Fail::Usage(format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Fail::Usage(format!(
            "{} holds keys but others may read it (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), Fail> {
    Ok(())
}

/// Decides the server: `--profile`, else the environment, else the default profile.
pub(crate) fn resolve(profile: Option<&str>) -> Result<Server, Fail> {
    let path = config_path()?;
    let from_profile = |config: &Config, name: &str| -> Result<Server, Fail> {
        let p = config.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            Fail::Usage(format!(
                "no profile {name:?} in {} (profiles: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        Ok(Server {
            url: p.url.clone(),
            key: p.key.clone(),
            from: format!("profile {name:?}"),
        })
    };
    if let Some(name) = profile {
        return from_profile(&Config::load(&path)?, name);
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (env("LOCKER_URL"), env("LOCKER_KEY")) {
        (Some(url), Some(key)) => {
            return Ok(Server {
                url,
                key,
                from: "LOCKER_URL and LOCKER_KEY".into(),
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Fail::Usage(
                "LOCKER_URL and LOCKER_KEY must be set together".into(),
            ))
        }
        (None, None) => {}
    }
    let config = Config::load(&path)?;
    match &config.default {
        Some(name) => from_profile(&config, name),
        None => Err(Fail::Usage(format!(
            "no server configured: set LOCKER_URL and LOCKER_KEY, or save a profile \
             (`locker profile set NAME --url URL`, key on stdin) in {}",
            path.display()
        ))),
    }
}
