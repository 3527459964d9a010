//! An independent S3-compatible server (s3s-fs) on loopback, for the direct-to-storage tests:
//! it checks SigV4 presigned signatures and `x-amz-checksum-sha256` itself.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{wait_listening, Group};
use crate::tools::Tools;
use crate::util::{free_port, random_hex, step, Result};

/// A running s3s-fs, stopped (with its process group) when dropped.
pub(crate) struct S3Server {
    _group: Group,
    pub url: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The bucket the e2e tests register as an `s3` bucket (a folder of the s3s-fs root).
pub(crate) const E2E_S3_BUCKET: &str = "e2e-direct";

/// A second bucket of the same server for the CLI's tests and benchmarks: a bucket's name is
/// registered once per deployment, and `direct.test.mjs` registers the first one behind its
/// own CORS proxy, which is gone when that file ends.
pub(crate) const E2E_CLI_BUCKET: &str = "e2e-cli";

/// A third bucket of the same server, for the CLI benchmark's registration with the `checksum`
/// verification policy beside `e2e-cli`'s `read_back` one (each bucket name is registered once
/// per server; a folder of its own keeps the two policies' objects apart).
pub(crate) const E2E_CHECKSUM_BUCKET: &str = "e2e-checksum";

/// Every bucket (folder) the server is started with, each with the Worker's secrets for it.
const BUCKETS: [&str; 3] = [E2E_S3_BUCKET, E2E_CLI_BUCKET, E2E_CHECKSUM_BUCKET];

impl S3Server {
    pub(crate) fn start(bin: &Path, root: &Path, log: &Path) -> Result<Self> {
        for bucket in BUCKETS {
            std::fs::create_dir_all(root.join(bucket))?;
        }
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
        wait_listening(port, Duration::from_secs(30), "s3s-fs")?;
        Ok(Self {
            _group: group,
            url: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
        })
    }

    /// Starts s3s-fs over `root` and adds the bucket's credentials to the Worker's secrets
    /// file, named as the Worker reads them.
    pub(crate) fn start_for_worker(
        tools: &Tools,
        root: &Path,
        log: &Path,
        secrets: &Path,
    ) -> Result<Self> {
        let s3 = Self::start(&tools.s3s_fs, root, log)?;
        let mut env_file = std::fs::read_to_string(secrets)?;
        for bucket in BUCKETS {
            let (key, secret) = locker_core::s3::credential_secrets(bucket);
            env_file.push_str(&format!(
                "{key}={}\n{secret}={}\n",
                s3.access_key, s3.secret_key
            ));
        }
        std::fs::write(secrets, env_file)?;
        Ok(s3)
    }

    /// What the node scripts need to reach it (tests/support/s3.mjs).
    pub(crate) fn env(&self, cmd: &mut Command, root: &Path) {
        cmd.env("LOCKER_S3_URL", &self.url)
            .env("LOCKER_S3_BUCKET", E2E_S3_BUCKET)
            .env("LOCKER_S3_CLI_BUCKET", E2E_CLI_BUCKET)
            .env("LOCKER_S3_CHECKSUM_BUCKET", E2E_CHECKSUM_BUCKET)
            .env("LOCKER_S3_ROOT", root)
            .env("LOCKER_S3_ACCESS_KEY", &self.access_key)
            .env("LOCKER_S3_SECRET_KEY", &self.secret_key);
    }
}
