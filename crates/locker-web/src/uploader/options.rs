//! The `Uploader`'s options, read and checked once in its constructor, with their defaults; and
//! the client-side checks of a file against them (a convenience only: the Worker decides).

use locker_core::client::RetryPolicy;
use locker_core::validate;
use wasm_bindgen::prelude::*;
use web_sys::Blob;

use super::credential::Credential;
use crate::digest::Reading;
use crate::error::{code, LockerError};
use crate::js::{get_number, get_string};

const DEFAULT_CONCURRENCY: f64 = 3.0;
const DEFAULT_RETRIES: f64 = 4.0;
const DEFAULT_RETRY_DELAY_MS: f64 = 500.0;
/// The Worker's bounds for a signed upload URL's `expires_in` (seconds).
const MAX_EXPIRES_IN_S: f64 = 3600.0;

pub(super) struct Options {
    pub(super) endpoint: String,
    pub(super) namespace: String,
    pub(super) path_prefix: Option<String>,
    pub(super) credential: Credential,
    pub(super) retry: RetryPolicy,
    /// Lifetime asked for each signed upload URL (`expires_in`); the Worker's default if none.
    pub(super) expires_in: Option<f64>,
    max_size: Option<f64>,
    accept: Vec<String>,
    pub(super) reading: Reading,
    pub(super) parts: PartOptions,
    /// Whether a file's digest is remembered under its fingerprint and used when the same
    /// file is picked again (`rememberDigests`, default off; see `remembered`).
    pub(super) remember_digests: bool,
}

/// How files are uploaded in parts.
pub(super) struct PartOptions {
    /// Files of this many bytes and more go in parts (`multipartThreshold`).
    pub(super) threshold: u64,
    /// Parts in flight at once, per file (`partConcurrency`).
    pub(super) concurrency: usize,
    /// Whether uploads in parts are remembered in IndexedDB and resumed after a reload
    /// (`resume`, default on).
    pub(super) resume: bool,
}

/// Parts in flight per file by default: enough to fill a link whose single connection is slow
/// to ramp up, few enough that a browser's six connections per host leave room for the API.
const DEFAULT_PART_CONCURRENCY: f64 = 4.0;

impl PartOptions {
    fn parse(o: &JsValue) -> Result<Self, LockerError> {
        let threshold = bounded(
            get_number(o, "multipartThreshold"),
            // 64 MiB: exact as a number.
            locker_core::multipart::DEFAULT_THRESHOLD as f64,
            (1.0, locker_core::multipart::MAX_OBJECT_SIZE as f64),
            "multipartThreshold must be 1 byte to 5 TiB",
        )?;
        let concurrency = bounded(
            get_number(o, "partConcurrency"),
            DEFAULT_PART_CONCURRENCY,
            (1.0, 16.0),
            "partConcurrency must be 1 to 16",
        )?;
        let resume = flag(o, "resume", true)?;
        Ok(Self {
            threshold: threshold.ceil() as u64,
            concurrency: concurrency as usize,
            resume,
        })
    }
}

/// The boolean option `name`, `default` when it is not given.
fn flag(o: &JsValue, name: &str, default: bool) -> Result<bool, LockerError> {
    match crate::js::get(o, name) {
        v if v.is_undefined() => Ok(default),
        v => v
            .as_bool()
            .ok_or_else(|| LockerError::invalid([name, " must be true or false"].concat())),
    }
}

/// How many files upload at once, and how many hash at once (each in its own Web Worker, from
/// the page's pool of them, or by WebCrypto).
pub(super) struct Concurrency {
    pub(super) uploads: usize,
    pub(super) hashes: usize,
}

/// `value` (or `default`) if it lies in `min..=max`; otherwise the error `message`.
fn bounded(
    value: Option<f64>,
    default: f64,
    (min, max): (f64, f64),
    message: &str,
) -> Result<f64, LockerError> {
    let v = value.unwrap_or(default);
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(LockerError::invalid(message))
    }
}

impl Options {
    /// The options of `new Uploader(o)`. Checked in a fixed order, so the same bad options
    /// always give the same error.
    pub(super) fn parse(o: &JsValue) -> Result<Self, LockerError> {
        let endpoint = get_string(o, "endpoint")
            .map(|e| e.trim_end_matches('/').to_owned())
            .ok_or_else(|| LockerError::invalid("endpoint is required (the Worker's URL)"))?;
        let namespace = get_string(o, "namespace")
            .ok_or_else(|| LockerError::invalid("namespace is required"))?;
        locker_core::Namespace::parse(&namespace)
            .map_err(|e| LockerError::invalid(e.to_string()))?;
        let credential = Credential::parse(o)?;
        let accept = get_string(o, "accept")
            .unwrap_or_default()
            .split(',')
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        let max_size = get_number(o, "maxSize");
        if max_size.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
            return Err(LockerError::invalid("maxSize must be a number of bytes"));
        }
        Ok(Self {
            endpoint,
            namespace,
            path_prefix: get_string(o, "pathPrefix"),
            credential,
            retry: retry_policy(o)?,
            expires_in: expires_in(o)?,
            max_size,
            accept,
            reading: Reading::parse(o)?,
            parts: PartOptions::parse(o)?,
            remember_digests: flag(o, "rememberDigests", false)?,
        })
    }

    /// Refuses a file the options say the Worker would refuse anyway: too large, or not of an
    /// accepted or valid type.
    pub(super) fn check(
        &self,
        file: &Blob,
        name: &str,
        content_type: &str,
    ) -> Result<(), LockerError> {
        let size = file.size();
        if let Some(max) = self.max_size {
            if size > max {
                return Err(LockerError::new(
                    code::TOO_LARGE,
                    // Whole numbers: a Blob's size, and a limit of bytes.
                    format!(
                        "{} is {} bytes; the limit is {} bytes",
                        name, size as u64, max as u64
                    ),
                ));
            }
        }
        if !validate::accepted(&self.accept, name, content_type) {
            return Err(LockerError::new(
                code::TYPE_NOT_ALLOWED,
                format!("{name} ({content_type}) is not an accepted type"),
            ));
        }
        validate::content_type(content_type)
            .map_err(|e| LockerError::new(code::TYPE_NOT_ALLOWED, e.to_string()))?;
        Ok(())
    }
}

fn retry_policy(o: &JsValue) -> Result<RetryPolicy, LockerError> {
    Ok(RetryPolicy {
        retries: bounded(
            get_number(o, "retries"),
            DEFAULT_RETRIES,
            (0.0, 20.0),
            "retries must be 0 to 20",
        )? as u32,
        base_ms: bounded(
            get_number(o, "retryDelay"),
            DEFAULT_RETRY_DELAY_MS,
            (0.0, 60_000.0),
            "retryDelay must be 0 to 60000 (ms)",
        )?,
    })
}

fn expires_in(o: &JsValue) -> Result<Option<f64>, LockerError> {
    match get_number(o, "expiresIn") {
        None => Ok(None),
        // NaN and infinities have no zero fraction either.
        Some(s) if s.fract() == 0.0 && (1.0..=MAX_EXPIRES_IN_S).contains(&s) => Ok(Some(s)),
        Some(_) => Err(LockerError::invalid(
            "expiresIn must be 1 to 3600 (whole seconds)",
        )),
    }
}

impl Concurrency {
    /// Read after [`Options::parse`]: its errors come first.
    pub(super) fn parse(o: &JsValue) -> Result<Self, LockerError> {
        let uploads = bounded(
            get_number(o, "concurrency"),
            DEFAULT_CONCURRENCY,
            (1.0, 16.0),
            "concurrency must be 1 to 16",
        )?;
        // `hashConcurrency` is the older name of `hashWorkers`; the new one wins.
        let (name, asked) = match get_number(o, "hashWorkers") {
            Some(n) => ("hashWorkers", Some(n)),
            None => ("hashConcurrency", get_number(o, "hashConcurrency")),
        };
        let hashes = bounded(
            asked,
            f64::from(crate::hash_worker::default_hash_workers()),
            (1.0, 8.0),
            &[name, " must be 1 to 8"].concat(),
        )?;
        Ok(Self {
            uploads: uploads as usize,
            hashes: hashes as usize,
        })
    }
}

/// The type a file is uploaded as (`locker_core::validate::upload_content_type`).
pub(super) fn content_type_of(file: &Blob) -> String {
    validate::upload_content_type(&file.type_())
}
