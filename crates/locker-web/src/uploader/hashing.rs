//! Before a file reserves: what an upload in parts starts from (its record, if one is kept),
//! and the file's SHA-256, hashed or remembered; [`Coming`] counts the files on this way, for
//! the batches of reservations.

use locker_core::multipart;
use locker_core::resume::{self, Record};
use locker_core::upload_state::Event;
use wasm_bindgen::JsCast;
use web_sys::File;

use super::parts::Remembered;
use super::pipeline::Job;
use super::{memory, remembered, Inner};
use crate::error::LockerError;
use crate::hash_worker::hash_best;

/// What an upload in parts carries from hashing to the transfer.
pub(super) struct InParts {
    pub(super) sha256: String,
    /// The digest of each part at the planner's part size.
    pub(super) digests: Vec<String>,
    /// Where its record is kept in IndexedDB (`resume` on and the file a `File`).
    pub(super) key: Option<String>,
    /// The record found under `key` before hashing: the file is not read again.
    pub(super) found: Option<Record>,
    /// The record of the reservation being sent, kept up to date.
    pub(super) remembered: Option<Remembered>,
}

/// A file on its way to reserving (hashing, or waiting to), counted in `Inner::to_reserve`
/// while it lives: a batch of reservations held back for more items looks at the count, and
/// is woken when it changes.
pub(super) struct Coming<'a>(&'a Inner);

impl<'a> Coming<'a> {
    pub(super) fn new(inner: &'a Inner) -> Self {
        inner.to_reserve.set(inner.to_reserve.get() + 1);
        Self(inner)
    }
}

impl Drop for Coming<'_> {
    fn drop(&mut self) {
        let count = &self.0.to_reserve;
        count.set(count.get().saturating_sub(1));
        self.0.reserves.nudge();
    }
}

impl Inner {
    /// What an upload in parts starts from, if `job`'s file is one (non-empty, at least
    /// `multipartThreshold` bytes): where it is remembered, and what was remembered of it.
    pub(super) async fn in_parts(&self, job: &Job) -> Option<InParts> {
        // A Blob's size is a whole number of bytes.
        let bytes = job.file.size() as u64;
        if bytes == 0 || bytes < self.options.parts.threshold {
            return None;
        }
        let key = self.record_key(job);
        let found = match &key {
            Some(k) => memory::load(k)
                .await
                .filter(|r| r.size == bytes && r.part_size == multipart::part_size(bytes)),
            None => None,
        };
        Some(InParts {
            sha256: String::new(),
            digests: Vec::new(),
            key,
            found,
            remembered: None,
        })
    }

    /// The file's SHA-256, hashed by WebCrypto or in a Web Worker (with each part's, for an
    /// upload in parts),
    /// or, for the same file (name, size, lastModified) as an upload remembered, taken from the
    /// record without reading the file again; with `rememberDigests`, also for the same file
    /// (its fingerprint) as one hashed before (`remembered`).
    pub(super) async fn digest(
        &self,
        job: &Job,
        parts: Option<&mut InParts>,
    ) -> Result<String, LockerError> {
        let signal = job.signal.as_ref();
        let found = parts.as_ref().and_then(|p| p.found.clone());
        let parts = match (found, parts) {
            (Some(record), Some(p)) => {
                job.tracked.apply(Event::Start);
                p.digests.clone_from(&record.part_sha256);
                p.sha256.clone_from(&record.sha256);
                return Ok(record.sha256);
            }
            (_, p) => p,
        };
        let size = job.file.size();
        // A Blob's size is a whole number of bytes.
        let part_size = parts.is_some().then(|| multipart::part_size(size as u64));
        let fingerprint = self
            .options
            .remember_digests
            .then(|| remembered::fingerprint(&job.file))
            .flatten();
        if let Some((digest, digests)) =
            remembered::recall(fingerprint.as_deref(), size as u64, part_size).await
        {
            job.tracked.apply(Event::Start);
            if let Some(p) = parts {
                p.digests = digests;
                p.sha256.clone_from(&digest);
            }
            return Ok(digest);
        }
        let tracked = job.tracked.clone();
        let progress = move |bytes: f64| {
            tracked.events.emit(
                "hash-progress",
                &[("loaded", bytes.into()), ("total", size.into())],
            );
            tracked.apply(Event::HashProgress(bytes as u64));
        };
        // WebCrypto for a small file in one request; a pooled worker (with every part's
        // digest) otherwise, in its turn: queued until then.
        let started = job.tracked.clone();
        let (digest, digests) = hash_best(
            &job.file,
            self.options.reading,
            part_size,
            true,
            &self.hash_slots,
            signal,
            move || {
                started.apply(Event::Start);
            },
            progress,
        )
        .await?;
        remembered::keep(fingerprint.as_deref(), &digest, part_size, &digests).await;
        if let Some(p) = parts {
            p.digests = digests;
            p.sha256.clone_from(&digest);
        }
        Ok(digest)
    }

    /// Where the record of `job`'s upload in parts is kept, if it is kept: `resume` is on and
    /// the file is a `File` (a Blob has no `lastModified` to tell an edited file by).
    pub(super) fn record_key(&self, job: &Job) -> Option<String> {
        if !self.options.parts.resume {
            return None;
        }
        let file = job.file.dyn_ref::<File>()?;
        Some(resume::record_key(
            &self.options.endpoint,
            &self.options.namespace,
            job.path.as_deref(),
            &job.name,
            // A Blob's size is a whole number of bytes.
            file.size() as u64,
            // Whole milliseconds since the epoch.
            file.last_modified() as u64,
        ))
    }
}
