//! Streaming SHA-256 of a `Blob`: constant memory, whatever the size.
//!
//! The Blob is read as a byte stream into two reused buffers of `chunk_size` bytes; the next
//! piece is already being read while the current one is hashed, so disk and CPU overlap. Each
//! piece is copied once into a buffer in wasm memory, also reused, so memory does not grow with
//! the file.

use js_sys::{Function, Promise, Uint8Array};
use locker_core::hash::to_hex;
use sha2::{Digest, Sha256 as Sha256State};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    Blob, ReadableStreamByobReader, ReadableStreamGetReaderOptions, ReadableStreamReaderMode,
};

use crate::error::{code, LockerError};
use crate::js::{get, get_number, within};

/// Default slice size: large enough that per-slice overhead vanishes, small enough that two
/// slices in flight stay far below the memory budget.
pub(crate) const DEFAULT_CHUNK: u32 = 4 << 20;
/// Smallest and largest accepted slice sizes.
const CHUNK_RANGE: std::ops::RangeInclusive<u32> = (64 << 10)..=(64 << 20);

/// An incremental SHA-256 for JavaScript callers: `update()` with bytes, then `hex()`.
#[wasm_bindgen]
pub struct Sha256 {
    state: Sha256State,
}

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self {
            state: Sha256State::new(),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.state.update(bytes);
    }

    /// The digest as 64 lowercase hex digits; the hasher starts over afterwards.
    pub fn hex(&mut self) -> String {
        to_hex(&self.state.finalize_reset())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a read may give nothing before it counts as stalled (default), and the range a
/// caller may choose from, in milliseconds.
pub(crate) const DEFAULT_STALL_MS: f64 = 30_000.0;
const STALL_RANGE: std::ops::RangeInclusive<f64> = 100.0..=600_000.0;

/// How a Blob is read: the size of each piece, and how long a read may take before the byte
/// stream counts as stalled (Chromium's has been seen to stop for good on a long series of
/// 1 GiB reads) and reading goes on with slices from where it stopped.
#[derive(Clone, Copy)]
pub(crate) struct Reading {
    pub chunk: u32,
    pub stall_ms: f64,
}

impl Reading {
    /// `{chunkSize, stallTimeout}` of a caller's options, checked.
    pub(crate) fn parse(options: &JsValue) -> Result<Self, LockerError> {
        let chunk = get_number(options, "chunkSize").map_or(DEFAULT_CHUNK, |c| c as u32);
        if !CHUNK_RANGE.contains(&chunk) {
            return Err(LockerError::invalid(format!(
                "chunkSize must be {} to {} bytes",
                CHUNK_RANGE.start(),
                CHUNK_RANGE.end()
            )));
        }
        let stall_ms = get_number(options, "stallTimeout").unwrap_or(DEFAULT_STALL_MS);
        if !STALL_RANGE.contains(&stall_ms) {
            return Err(LockerError::invalid(
                "stallTimeout must be 100 to 600000 (ms)",
            ));
        }
        Ok(Self { chunk, stall_ms })
    }

    /// The options object [`Reading::parse`] reads back (for the hash worker's message).
    pub(crate) fn props(&self) -> [(&'static str, JsValue); 2] {
        [
            ("chunkSize", self.chunk.into()),
            ("stallTimeout", self.stall_ms.into()),
        ]
    }
}

/// Where the bytes of a Blob come from, one piece at a time.
enum Source {
    /// A byte stream read into two buffers that take turns: one is being filled while the
    /// other is hashed, and neither is ever reallocated, so nothing is left for the garbage
    /// collector (reading with `slice().arrayBuffer()` leaves one dead buffer per slice, and
    /// the page's memory grew by 150 MiB over 1 GiB that way in Chromium).
    Byob {
        blob: Blob,
        reader: ReadableStreamByobReader,
        pending: Option<Promise>,
        spare: Option<Uint8Array>,
        /// Bytes handed out so far: where slices take over if the stream stalls.
        offset: f64,
    },
    /// Browsers without byte streams on Blobs, and a stream that stalled: slices, the next
    /// read while hashing this one.
    Slices {
        blob: Blob,
        step: f64,
        next: f64,
        pending: Option<Promise>,
    },
}

fn read_error(e: JsValue) -> LockerError {
    LockerError::from_js("could not read the file", e)
}

impl Source {
    fn open(blob: &Blob, chunk: u32) -> Result<Self, LockerError> {
        let options = ReadableStreamGetReaderOptions::new();
        options.set_mode(ReadableStreamReaderMode::Byob);
        // Called through `Function::call1` so that a browser whose Blob streams are not byte
        // streams (getReader throws) falls back to slices instead of failing.
        let stream = blob.stream();
        let byob = get(&stream, "getReader")
            .dyn_into::<Function>()
            .and_then(|get_reader| get_reader.call1(&stream, &options))
            .and_then(wasm_bindgen::JsCast::dyn_into::<ReadableStreamByobReader>);
        Ok(match byob {
            Ok(reader) => {
                let first = reader.read_with_array_buffer_view(&Uint8Array::new_with_length(chunk));
                Self::Byob {
                    blob: blob.clone(),
                    reader,
                    pending: Some(first),
                    spare: Some(Uint8Array::new_with_length(chunk)),
                    offset: 0.0,
                }
            }
            Err(_) => Self::slices(blob, chunk, 0.0)?,
        })
    }

    /// Slices of `blob` from byte `from` on, the first read started.
    fn slices(blob: &Blob, chunk: u32, from: f64) -> Result<Self, LockerError> {
        let mut source = Self::Slices {
            blob: blob.clone(),
            step: f64::from(chunk),
            next: from,
            pending: None,
        };
        source.read_ahead()?;
        Ok(source)
    }

    /// Starts the next read if a buffer (or slice) is free for it.
    fn read_ahead(&mut self) -> Result<(), LockerError> {
        match self {
            Self::Byob {
                reader,
                pending,
                spare,
                ..
            } => {
                if pending.is_none() {
                    if let Some(buffer) = spare.take() {
                        *pending = Some(reader.read_with_array_buffer_view(&buffer));
                    }
                }
            }
            Self::Slices {
                blob,
                step,
                next,
                pending,
            } => {
                let size = blob.size();
                if pending.is_none() && *next < size {
                    let end = (*next + *step).min(size);
                    let slice = blob
                        .slice_with_f64_and_f64(*next, end)
                        .map_err(read_error)?;
                    *pending = Some(slice.array_buffer());
                    *next = end;
                }
            }
        }
        Ok(())
    }

    /// The next piece, or `None` at the end. A byte stream that gives nothing for
    /// `reading.stall_ms` is cancelled and slices take over from where it stopped.
    async fn next(&mut self, reading: Reading) -> Result<Option<Uint8Array>, LockerError> {
        let value = loop {
            let pending = match self {
                Self::Byob { pending, .. } | Self::Slices { pending, .. } => pending.take(),
            };
            let Some(read) = pending else {
                return Ok(None);
            };
            if let Some(value) = within(&read, reading.stall_ms).await.map_err(read_error)? {
                break value;
            }
            let Self::Byob {
                blob,
                reader,
                offset,
                ..
            } = self
            else {
                return Err(LockerError::new(
                    code::HASH_FAILED,
                    "reading the file stalled",
                ));
            };
            // The stream's own promise is dropped with it; its cancellation cannot fail in a
            // way that matters here.
            let _ = reader.cancel();
            *self = Self::slices(&blob.clone(), reading.chunk, *offset)?;
        };
        let piece = match self {
            Self::Byob { offset, .. } => {
                if get(&value, "done").as_bool().unwrap_or(true) {
                    return Ok(None);
                }
                let piece = get(&value, "value")
                    .dyn_into::<Uint8Array>()
                    .map_err(|_| LockerError::new(code::HASH_FAILED, "the stream gave no bytes"))?;
                *offset += f64::from(piece.length());
                piece
            }
            Self::Slices { .. } => Uint8Array::new(&value),
        };
        self.read_ahead()?;
        Ok(Some(piece))
    }

    /// Hands a piece's buffer back once it has been hashed, for the next read.
    fn recycle(&mut self, piece: Uint8Array) -> Result<(), LockerError> {
        if let Self::Byob { spare, .. } = self {
            *spare = Some(Uint8Array::new(&piece.buffer()));
        }
        self.read_ahead()
    }
}

/// How often progress is reported: at most once per this many bytes (and at the end).
const PROGRESS_STEP: f64 = 4.0 * 1024.0 * 1024.0;

/// The SHA-256 of each part of `part_size` bytes, fed the same pieces as the whole file's hash
/// (pieces and parts need not line up: a piece is split where a part ends).
///
/// Where WebCrypto is there (a secure context, which a worker started by a secure page is),
/// each part is gathered into one reused buffer and handed to `crypto.subtle.digest`, which
/// copies it and hashes it natively on a thread of the browser's own while the wasm hash goes on
/// with the whole file: a file in parts is then hashed once on this thread, not twice.
/// Elsewhere the parts are hashed here by the wasm SHA-256, as the whole file is.
struct PartHashes {
    part_size: u64,
    filled: u64,
    done: Vec<String>,
    by: PartHasher,
}

enum PartHasher {
    Wasm(Sha256State),
    WebCrypto {
        subtle: JsValue,
        digest: Function,
        /// The part being gathered (`part_size` bytes).
        buffer: Uint8Array,
        /// Digests under way, oldest first.
        pending: std::collections::VecDeque<Promise>,
    },
}

/// Part digests under way at most: each holds WebCrypto's copy of a part, so memory stays
/// bounded if the native digest falls behind the reading (it is far faster, so it never waits
/// in practice).
const PENDING_PARTS: usize = 4;

impl PartHashes {
    fn new(part_size: u64) -> Self {
        let by = crate::hash_worker::subtle()
            .and_then(|subtle| {
                let digest = get(&subtle, "digest").dyn_into::<Function>().ok()?;
                // A part size is a whole number of MiB, far below 4 GiB.
                let buffer = Uint8Array::new_with_length(u32::try_from(part_size).ok()?);
                Some(PartHasher::WebCrypto {
                    subtle,
                    digest,
                    buffer,
                    pending: std::collections::VecDeque::new(),
                })
            })
            .unwrap_or_else(|| PartHasher::Wasm(Sha256State::new()));
        Self {
            part_size,
            filled: 0,
            done: Vec::new(),
            by,
        }
    }

    /// Adds `piece`, whose bytes are also in `bytes` (wasm memory): the WebCrypto path copies
    /// from the JavaScript piece, the wasm path hashes the copy in wasm memory.
    async fn update(&mut self, piece: &Uint8Array, bytes: &[u8]) -> Result<(), LockerError> {
        let mut at: usize = 0;
        while at < bytes.len() {
            let room = usize::try_from(self.part_size - self.filled).unwrap_or(usize::MAX);
            let n = room.min(bytes.len() - at);
            match &mut self.by {
                PartHasher::Wasm(state) => state.update(&bytes[at..at + n]),
                PartHasher::WebCrypto { buffer, .. } => {
                    // Offsets within one 4 MiB piece and one part: far below 2^32.
                    let (from, to) = (at as u32, (at + n) as u32);
                    buffer.set(&piece.subarray(from, to), self.filled as u32);
                }
            }
            self.filled += n as u64;
            at += n;
            if self.filled == self.part_size {
                self.end_part().await?;
            }
        }
        Ok(())
    }

    /// The part gathered so far is done: hashed, or handed to WebCrypto.
    async fn end_part(&mut self) -> Result<(), LockerError> {
        let filled = self.filled;
        self.filled = 0;
        match &mut self.by {
            PartHasher::Wasm(state) => {
                self.done.push(to_hex(&state.finalize_reset()));
                Ok(())
            }
            PartHasher::WebCrypto {
                subtle,
                digest,
                buffer,
                pending,
            } => {
                // The part's bytes: the whole buffer, or the first `filled` of it (the last).
                let part = buffer.subarray(0, filled as u32);
                let hashing: Promise = digest
                    .call2(subtle, &"SHA-256".into(), &part)
                    .and_then(JsCast::dyn_into)
                    .map_err(|e| LockerError::from_js("WebCrypto could not hash a part", e))?;
                pending.push_back(hashing);
                if pending.len() > PENDING_PARTS {
                    if let Some(oldest) = pending.pop_front() {
                        self.done.push(settled_hex(oldest).await?);
                    }
                }
                Ok(())
            }
        }
    }

    async fn finish(mut self) -> Result<Vec<String>, LockerError> {
        if self.filled > 0 {
            self.end_part().await?;
        }
        if let PartHasher::WebCrypto { pending, .. } = &mut self.by {
            while let Some(p) = pending.pop_front() {
                self.done.push(settled_hex(p).await?);
            }
        }
        Ok(self.done)
    }
}

/// The hex of the digest a WebCrypto promise settles with.
async fn settled_hex(digest: Promise) -> Result<String, LockerError> {
    let bytes = wasm_bindgen_futures::JsFuture::from(digest)
        .await
        .map_err(|e| LockerError::from_js("WebCrypto could not hash a part", e))?;
    Ok(to_hex(&Uint8Array::new(&bytes).to_vec()))
}

/// Hashes `blob` piece by piece. `progress(bytes_hashed)` is called every few MiB and at the end.
pub(crate) async fn hash_blob(
    blob: &Blob,
    reading: Reading,
    progress: impl FnMut(f64),
) -> Result<String, LockerError> {
    hash_blob_parts(blob, reading, None, progress)
        .await
        .map(|(sha256, _)| sha256)
}

/// [`hash_blob`], and with a `part_size` also the digest of each part of that size (the last
/// one shorter), from the same read of the file: an upload in parts declares every part's
/// digest, and reading a large file twice would cost as much as hashing it.
pub(crate) async fn hash_blob_parts(
    blob: &Blob,
    reading: Reading,
    part_size: Option<u64>,
    mut progress: impl FnMut(f64),
) -> Result<(String, Vec<String>), LockerError> {
    let size = blob.size();
    let mut parts = part_size.filter(|&p| p > 0).map(PartHashes::new);
    let mut state = Sha256State::new();
    let mut buffer = vec![0u8; reading.chunk as usize];
    let mut done = 0.0;
    let mut reported = 0.0;
    let mut source = Source::open(blob, reading.chunk)?;
    while let Some(piece) = source.next(reading).await? {
        let len = piece.length() as usize;
        let Some(dest) = buffer.get_mut(..len) else {
            return Err(LockerError::new(
                code::HASH_FAILED,
                "a piece was larger than asked for",
            ));
        };
        piece.copy_to(dest);
        if let Some(parts) = parts.as_mut() {
            parts.update(&piece, dest).await?;
        }
        source.recycle(piece)?;
        state.update(&*dest);
        done += len as f64;
        if done - reported >= PROGRESS_STEP {
            reported = done;
            progress(done);
        }
    }
    if done != size {
        return Err(LockerError::new(
            "file_changed",
            "the file changed while it was being read",
        ));
    }
    progress(done);
    let parts = match parts {
        Some(p) => p.finish().await?,
        None => Vec::new(),
    };
    Ok((to_hex(&state.finalize()), parts))
}

/// The caller's `onProgress(bytes)` from `options`, if any, as a progress function. A
/// throwing callback does not stop the hash.
pub(crate) fn on_progress(options: &JsValue) -> impl Fn(f64) + 'static {
    let callback = get(options, "onProgress").dyn_into::<Function>().ok();
    move |done| {
        if let Some(f) = &callback {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(done));
        }
    }
}

/// `hashBlob(blob, {chunkSize, stallTimeout, onProgress})`: hashes on the calling thread (page
/// or worker). `hashFile` hashes in a Web Worker instead, which keeps a page responsive; this
/// is for code that already runs in a worker of its own.
#[wasm_bindgen(js_name = hashBlob, unchecked_return_type = "string")]
pub async fn hash_blob_js(
    blob: Blob,
    #[wasm_bindgen(
        unchecked_optional_param_type = "{ chunkSize?: number; stallTimeout?: number; onProgress?: (bytes: number) => void }"
    )]
    options: Option<js_sys::Object>,
) -> Result<JsValue, JsValue> {
    let options = JsValue::from(options.unwrap_or_default());
    let digest = hash_blob(&blob, Reading::parse(&options)?, on_progress(&options)).await?;
    Ok(JsValue::from_str(&digest))
}
