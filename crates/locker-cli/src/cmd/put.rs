//! `locker put PATH... DEST`: files and directories, recursively, several at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use indicatif::ProgressBar;
use locker_client::api::{Reserved, BATCH_MAX};
use locker_client::{
    hash_file_parts, Client, FileDigest, Progress, PutOptions, Sent, Stored, Transferred,
};
use locker_core::{Location, LockerRef};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::PutArgs;
use crate::out::Out;
use crate::Fail;

/// One file to put.
struct Job {
    src: PathBuf,
    dest: LockerRef,
    size: u64,
}

/// What `--json` prints for one file.
#[derive(Serialize)]
struct FileResult {
    path: String,
    #[serde(rename = "ref")]
    locker_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    size: u64,
    deduplicated: bool,
    /// Body bytes sent to storage (0 on a dedup; more than `size` after a retried transfer).
    bytes_sent: u64,
    /// Milliseconds spent hashing, asking the Worker, sending, and waiting for the Worker to
    /// verify the stored bytes (complete).
    ms: Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<locker_core::api::ErrorDetail>,
}

#[derive(Serialize, Default)]
struct Timings {
    hash: u64,
    reserve: u64,
    transfer: u64,
    complete: u64,
}

#[derive(Serialize)]
struct Summary {
    stored: usize,
    deduplicated: usize,
    failed: usize,
    bytes_sent: u64,
    files: Vec<FileResult>,
}

pub(crate) async fn run(client: &Client, args: PutArgs, out: &Out) -> Result<(), Fail> {
    let (dest_arg, sources) = args
        .args
        .split_last()
        .ok_or_else(|| Fail::Usage("put wants PATH... DEST".into()))?;
    let dest_text = dest_arg.to_string_lossy();
    let dest = Location::parse(&dest_text).map_err(|e| Fail::Usage(format!("{dest_text}: {e}")))?;
    let jobs = plan(sources, &dest)?;
    let options = |src: &Path| PutOptions {
        content_type: args.content_type.clone().unwrap_or_else(|| {
            mime_guess::from_path(src)
                .first_or_octet_stream()
                .essence_str()
                .to_owned()
        }),
        filename: None,
        expires_in: args.url_expires,
        multipart_threshold: args.multipart_threshold,
        part_concurrency: usize::from(args.part_concurrency),
    };

    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let bar = out.bytes_bar(total);
    let jobs_at_once = usize::from(args.jobs).max(1);

    // Four stages side by side in this task: hashing (`jobs_at_once` files at a time),
    // reserving (up to BATCH_MAX hashed files per request, as many as are hashed when the
    // previous batch is answered), transfers (`jobs_at_once` at a time), and completing
    // (batched as the reserves are). Bounded channels keep each stage at most two batches
    // ahead of the next.
    let (hashed_tx, mut hashed_rx) = mpsc::channel::<Hashed>(2 * BATCH_MAX);
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>(2 * BATCH_MAX);
    let (sent_tx, sent_rx) = mpsc::channel::<Pending>(2 * BATCH_MAX);
    let hashing = async move {
        let mut hashed = futures_util::stream::iter(jobs)
            .map(|job| {
                let threshold = options(&job.src).hash_threshold();
                async move {
                    let started = std::time::Instant::now();
                    let digest = hash_file_parts(&job.src, threshold, None).await;
                    let hash_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    Hashed {
                        job,
                        hash_ms,
                        digest,
                    }
                }
            })
            .buffer_unordered(jobs_at_once);
        while let Some(h) = hashed.next().await {
            if hashed_tx.send(h).await.is_err() {
                break;
            }
        }
    };
    let reserving = async move {
        // Cleared for good by a server without the batch route: one reservation per file.
        let mut batches = true;
        while let Some(first) = hashed_rx.recv().await {
            let mut chunk = vec![first];
            while chunk.len() < BATCH_MAX {
                match hashed_rx.try_recv() {
                    Ok(h) => chunk.push(h),
                    Err(_) => break,
                }
            }
            let answers = if batches {
                reserve_chunk(client, &chunk, &options).await
            } else {
                None
            };
            batches &= answers.is_some();
            let (mut answers, ms) = answers.unwrap_or_default();
            answers.resize_with(chunk.len(), || None);
            for (hashed, reserved) in chunk.into_iter().zip(answers) {
                if ready_tx
                    .send(Ready {
                        hashed,
                        reserved: reserved.map(|r| (r, ms)),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    };
    let shared_bar = &bar;
    let transfers = async move {
        let sent_tx = &sent_tx;
        futures_util::stream::unfold(ready_rx, |mut rx| async move {
            rx.recv().await.map(|ready| (ready, rx))
        })
        .map(|ready| {
            let options = options(&ready.hashed.job.src);
            async move {
                match transfer(client, ready, &options, shared_bar).await {
                    Step::Done(meta, outcome) => Some(report(meta, outcome, shared_bar, out)),
                    Step::Complete(pending) => {
                        // The completer lives until every sender is gone, so this only fails
                        // if it is gone already, and then nothing reports this file anyway.
                        let _ = sent_tx.send(pending).await;
                        None
                    }
                }
            }
        })
        .buffer_unordered(jobs_at_once)
        .filter_map(std::future::ready)
        .collect::<Vec<FileResult>>()
        .await
        // `sent_tx` is dropped here: the completer sees the end once it has taken the rest.
    };
    let completing = complete_all(client, sent_rx, jobs_at_once, &bar, out);
    let ((), (), mut results, completed) = tokio::join!(hashing, reserving, transfers, completing);
    results.extend(completed);
    bar.finish_and_clear();

    let failed = results.iter().filter(|r| r.error.is_some()).count();
    let summary = Summary {
        stored: results
            .iter()
            .filter(|r| r.error.is_none() && !r.deduplicated)
            .count(),
        deduplicated: results.iter().filter(|r| r.deduplicated).count(),
        failed,
        bytes_sent: results.iter().map(|r| r.bytes_sent).sum(),
        files: results,
    };
    if out.json {
        out.json(&summary);
    } else if summary.files.len() > 1 {
        println!(
            "{} stored, {} deduplicated, {} failed, {} bytes sent",
            summary.stored, summary.deduplicated, summary.failed, summary.bytes_sent
        );
    }
    match failed {
        0 => Ok(()),
        n if n == summary.files.len() && n == 1 => {
            // One file: its error is the command's, with the server's code and message.
            let e = summary.files.into_iter().find_map(|f| f.error);
            Err(Fail::Partial(e.map_or_else(String::new, |e| {
                format!("{} ({})", e.message, e.code)
            })))
        }
        n => Err(Fail::Partial(format!(
            "{n} of {} files failed",
            summary.files.len()
        ))),
    }
}

/// A file hashed (or not: its read failed).
struct Hashed {
    job: Job,
    hash_ms: u64,
    digest: Result<FileDigest, locker_client::Error>,
}

/// A hashed file with its reservation from a batch, if the batch answered for it, and the
/// batch's milliseconds.
struct Ready {
    hashed: Hashed,
    reserved: Option<(Result<Reserved, locker_client::Error>, u64)>,
}

/// One batch reservation of the chunk's hashed files: the answers in the chunk's order (`None`
/// for a file whose hash failed), and the milliseconds the request took. `None`: no batch
/// answer, because the server has no batch route or the batch failed as a whole; every
/// file is then reserved alone (with that request's own retries).
async fn reserve_chunk(
    client: &Client,
    chunk: &[Hashed],
    options: &impl Fn(&Path) -> PutOptions,
) -> Option<(Vec<Option<Result<Reserved, locker_client::Error>>>, u64)> {
    let mut requests = Vec::new();
    let mut at = Vec::new();
    for (i, h) in chunk.iter().enumerate() {
        if let Ok(digest) = &h.digest {
            requests.push(Client::reserve_request(
                digest,
                &h.job.dest,
                &options(&h.job.src),
            ));
            at.push(i);
        }
    }
    if requests.is_empty() {
        return Some((Vec::new(), 0));
    }
    let started = std::time::Instant::now();
    let answers = client.reserve_batch(&requests).await.ok()??;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut out: Vec<Option<Result<Reserved, locker_client::Error>>> =
        std::iter::repeat_with(|| None).take(chunk.len()).collect();
    for (i, answer) in at.into_iter().zip(answers) {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(answer);
        }
    }
    Some((out, ms))
}

/// What a file's report needs besides its outcome.
struct Meta {
    shown: String,
    dest: LockerRef,
    size: u64,
    hash_ms: u64,
}

/// Where a file's transfer ended: with its outcome, or sent and waiting for its complete.
enum Step {
    Done(Meta, Result<Stored, locker_client::Error>),
    Complete(Pending),
}

/// A file whose bytes were sent in one request, for the completer.
struct Pending {
    meta: Meta,
    sent: Transferred,
}

/// Sends one file from its reservation (or reserves it alone first). A single-request upload
/// stops before its complete, which the completer sends with others.
async fn transfer(client: &Client, ready: Ready, options: &PutOptions, bar: &ProgressBar) -> Step {
    let Ready { hashed, reserved } = ready;
    let Hashed {
        job,
        hash_ms,
        digest,
    } = hashed;
    let meta = Meta {
        shown: job.src.display().to_string(),
        dest: job.dest.clone(),
        size: job.size,
        hash_ms,
    };
    let progress: Progress = {
        let bar = bar.clone();
        Arc::new(move |n| bar.inc(n))
    };
    let outcome = match (digest, reserved) {
        (Err(e), _) => Err(e),
        (Ok(digest), Some((Ok(reserved), ms))) => {
            client
                .send_reserved(
                    &job.src,
                    &digest,
                    &job.dest,
                    options,
                    Some(progress),
                    Some((reserved, ms)),
                )
                .await
        }
        // A refusal the single route would retry (a 5xx, a 429) is retried that way.
        (Ok(_), Some((Err(e), _))) if !retried_alone(&e) => Err(e),
        (Ok(digest), _) => {
            client
                .send_reserved(&job.src, &digest, &job.dest, options, Some(progress), None)
                .await
        }
    };
    match outcome {
        Ok(Sent::Stored(stored)) => Step::Done(meta, Ok(stored)),
        Ok(Sent::Transferred(sent)) => Step::Complete(Pending { meta, sent }),
        Err(e) => Step::Done(meta, Err(e)),
    }
}

/// Completes a batch waits for before it goes, while transfers still run, and for at most how
/// long: as the browser module's Uploader gathers them (`locker_core::gather`).
const GATHERED: usize = locker_core::gather::GATHERED;
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(
    locker_core::gather::linger_ms(locker_core::gather::Kind::Completes) as u64,
);

/// The completer: takes sent files as they come and completes them in batches: files sent
/// while a batch is in flight wait for its answer and go together in the next (up to
/// BATCH_MAX), and when none is in flight the next waits for [`GATHERED`] files for up to
/// [`GATHER_WAIT`] while transfers go on (the last files go as soon as the last transfer
/// ended). A server without the batch route gets single completes, `jobs_at_once` at a time.
async fn complete_all(
    client: &Client,
    mut sent_rx: mpsc::Receiver<Pending>,
    jobs_at_once: usize,
    bar: &ProgressBar,
    out: &Out,
) -> Vec<FileResult> {
    let mut results = Vec::new();
    // Cleared for good by a server without the batch route.
    let mut batches = true;
    while let Some(first) = sent_rx.recv().await {
        let mut chunk = vec![first];
        while chunk.len() < BATCH_MAX {
            match sent_rx.try_recv() {
                Ok(p) => chunk.push(p),
                Err(_) => break,
            }
        }
        // Held back a moment for more while transfers go on (the channel stays open until the
        // last one ended): each request costs the Worker far more than each id in it.
        let until = tokio::time::Instant::now() + GATHER_WAIT;
        while chunk.len() < GATHERED {
            match tokio::time::timeout_at(until, sent_rx.recv()).await {
                Ok(Some(p)) => chunk.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        let mut answers: Vec<Option<(Result<_, _>, u64)>> = Vec::new();
        if batches {
            let ids: Vec<String> = chunk.iter().map(|p| p.sent.upload_id.clone()).collect();
            let started = std::time::Instant::now();
            match client.complete_batch(&ids).await {
                Ok(Some(done)) => {
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    answers = done.into_iter().map(|d| Some((d, ms))).collect();
                }
                Ok(None) => batches = false,
                // The batch failed as a whole (after its retries): each file is completed
                // alone, with that request's own retries, rather than failed.
                Err(_) => {}
            }
        }
        answers.resize_with(chunk.len(), || None);
        let done = futures_util::stream::iter(chunk.into_iter().zip(answers))
            .map(|(pending, answer)| async move {
                let Pending { meta, sent } = pending;
                let outcome = match answer {
                    Some((Ok(done), ms)) => Ok(sent.finish(done, ms)),
                    Some((Err(e), _)) if !retried_alone(&e) => Err(e),
                    _ => {
                        let started = std::time::Instant::now();
                        client.complete(&sent.upload_id).await.map(|done| {
                            let ms =
                                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                            sent.finish(done, ms)
                        })
                    }
                };
                report(meta, outcome, bar, out)
            })
            .buffer_unordered(jobs_at_once)
            .collect::<Vec<FileResult>>()
            .await;
        results.extend(done);
    }
    results
}

/// Shows one file's outcome and makes its `--json` entry.
fn report(
    meta: Meta,
    outcome: Result<Stored, locker_client::Error>,
    bar: &ProgressBar,
    out: &Out,
) -> FileResult {
    let Meta {
        shown,
        dest,
        size,
        hash_ms,
    } = meta;
    match outcome {
        Ok(s) => {
            // The bar counts bytes handled: a dedup or a retry's rest count too.
            bar.inc(size.saturating_sub(s.bytes_sent.min(size)));
            let what = if s.deduplicated { "dedup " } else { "stored" };
            out.line(
                bar,
                &format!("{what} {} ({} bytes sent)", s.locker_ref, s.bytes_sent),
            );
            FileResult {
                path: shown,
                locker_ref: s.locker_ref,
                sha256: Some(s.sha256),
                size: s.size,
                deduplicated: s.deduplicated,
                bytes_sent: s.bytes_sent,
                ms: Timings {
                    hash: hash_ms,
                    reserve: s.reserve_ms,
                    transfer: s.transfer_ms,
                    complete: s.complete_ms,
                },
                error: None,
            }
        }
        Err(e) => {
            bar.inc(size);
            bar.suspend(|| eprintln!("failed {shown}: {e}"));
            FileResult {
                path: shown,
                locker_ref: dest.to_string(),
                sha256: None,
                size,
                deduplicated: false,
                bytes_sent: 0,
                ms: Timings {
                    hash: hash_ms,
                    ..Timings::default()
                },
                error: Some(locker_core::api::ErrorDetail {
                    code: e.code().to_owned(),
                    message: e.message(),
                }),
            }
        }
    }
}

/// Whether a batch item's refusal is one a reservation alone retries (the server may pass it
/// next time), so the file is reserved alone rather than failed.
fn retried_alone(e: &locker_client::Error) -> bool {
    e.status().is_some_and(|s| s == 429 || s >= 500)
}

/// Every file to put and where, decided before anything is sent: a missing source, a name
/// that cannot be a locker path, or several files for a one-file destination is a usage
/// error, and nothing is uploaded.
fn plan(sources: &[PathBuf], dest: &Location) -> Result<Vec<Job>, Fail> {
    let mut jobs = Vec::new();
    for src in sources {
        let meta =
            std::fs::metadata(src).map_err(|e| Fail::Usage(format!("{}: {e}", src.display())))?;
        if meta.is_dir() {
            let Location::Place(place) = dest else {
                return Err(Fail::Usage(format!(
                    "{} is a directory: give a destination ending in / (locker://ns/prefix/)",
                    src.display()
                )));
            };
            let mut files = Vec::new();
            walk(src, &mut files)?;
            for (path, size) in files {
                let rel = relative(src, &path)?;
                let to = place
                    .join(&rel)
                    .map_err(|e| Fail::Usage(format!("{}: {e}", path.display())))?;
                jobs.push(Job {
                    src: path,
                    dest: to,
                    size,
                });
            }
        } else {
            let to = match dest {
                Location::File(r) => r.clone(),
                Location::Place(place) => {
                    let name = src.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                        Fail::Usage(format!("{}: no usable file name", src.display()))
                    })?;
                    place
                        .join(name)
                        .map_err(|e| Fail::Usage(format!("{}: {e}", src.display())))?
                }
            };
            jobs.push(Job {
                src: src.clone(),
                dest: to,
                size: meta.len(),
            });
        }
    }
    if matches!(dest, Location::File(_)) && jobs.len() != 1 {
        return Err(Fail::Usage(
            "several files need a destination ending in / (locker://ns/prefix/)".into(),
        ));
    }
    Ok(jobs)
}

/// Regular files below `dir`, sorted. Symbolic links to directories are not followed (a link
/// loop would never end); links to files are put as the files they point at.
fn walk(dir: &Path, files: &mut Vec<(PathBuf, u64)>) -> Result<(), Fail> {
    let fail = |e: std::io::Error| Fail::Usage(format!("{}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(fail)?
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(fail)?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else {
            let meta = std::fs::metadata(&path)
                .map_err(|e| Fail::Usage(format!("{}: {e}", path.display())))?;
            if meta.is_file() {
                files.push((path, meta.len()));
            }
        }
    }
    Ok(())
}

/// `path` relative to `root`, `/`-separated; names that are not UTF-8 are refused.
fn relative(root: &Path, path: &Path) -> Result<String, Fail> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| Fail::Usage(format!("{} is outside {}", path.display(), root.display())))?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| Fail::Usage(format!("{}: the name is not UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> PathBuf {
        let root = std::env::temp_dir().join(format!("locker-cli-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/a.txt"), b"a").unwrap();
        std::fs::write(root.join("d/sub/b.bin"), b"bb").unwrap();
        std::fs::write(root.join("one.txt"), b"one").unwrap();
        root
    }

    #[test]
    fn plans_directories_by_relative_path_and_files_by_name() {
        let root = tree();
        let dest = Location::parse("locker://corp/up/").unwrap();
        let jobs = plan(&[root.join("d"), root.join("one.txt")], &dest).unwrap();
        let got: Vec<(String, u64)> = jobs.iter().map(|j| (j.dest.to_string(), j.size)).collect();
        assert_eq!(
            got,
            [
                ("locker://corp/up/a.txt".to_owned(), 1),
                ("locker://corp/up/sub/b.bin".to_owned(), 2),
                ("locker://corp/up/one.txt".to_owned(), 3),
            ]
        );
        let file = Location::parse("locker://corp/x.txt").unwrap();
        assert_eq!(
            plan(&[root.join("one.txt")], &file).unwrap()[0]
                .dest
                .to_string(),
            "locker://corp/x.txt"
        );
        // Nothing is planned when any argument is wrong.
        assert!(matches!(
            plan(&[root.join("d")], &file),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(
            plan(&[root.join("one.txt"), root.join("one.txt")], &file),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(
            plan(&[root.join("missing")], &dest),
            Err(Fail::Usage(_))
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
