//! Streaming SHA-256 of a `Blob`: constant memory, whatever the size.
//!
//! The Blob is read as a byte stream into two reused buffers of `chunk_size` bytes; the next
//! piece is already being read while the current one is hashed, so disk and CPU overlap. Each
//! piece is copied once into a buffer in wasm memory, also reused, so memory does not grow with
//! the file.

use js_sys::{Function, Uint8Array};
use locker_core::hash::to_hex;
use sha2::{Digest, Sha256 as Sha256State};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, ReadableStreamByobReader, ReadableStreamGetReaderOptions, ReadableStreamReaderMode,
};

use crate::error::{code, LockerError};
use crate::js::get;

/// Default slice size: large enough that per-slice overhead vanishes, small enough that two
/// slices in flight stay far below the memory budget.
pub const DEFAULT_CHUNK: u32 = 4 << 20;
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

/// Checks a caller's slice size.
pub fn chunk_size(requested: Option<u32>) -> Result<u32, LockerError> {
    let size = requested.unwrap_or(DEFAULT_CHUNK);
    if CHUNK_RANGE.contains(&size) {
        Ok(size)
    } else {
        Err(LockerError::invalid(format!(
            "chunkSize must be {} to {} bytes",
            CHUNK_RANGE.start(),
            CHUNK_RANGE.end()
        )))
    }
}

/// Where the bytes of a Blob come from, one piece at a time.
enum Source {
    /// A byte stream read into two buffers that take turns: one is being filled while the
    /// other is hashed, and neither is ever reallocated, so nothing is left for the garbage
    /// collector (reading with `slice().arrayBuffer()` leaves one dead buffer per slice, and
    /// the page's memory grew by 150 MiB over 1 GiB that way in Chromium).
    Byob {
        reader: ReadableStreamByobReader,
        pending: Option<JsFuture>,
        spare: Option<Uint8Array>,
    },
    /// Browsers without byte streams on Blobs: slices, the next read while hashing this one.
    Slices {
        blob: Blob,
        step: f64,
        next: f64,
        pending: Option<JsFuture>,
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
            .and_then(|r| r.dyn_into::<ReadableStreamByobReader>());
        Ok(match byob {
            Ok(reader) => {
                let first = JsFuture::from(
                    reader.read_with_array_buffer_view(&Uint8Array::new_with_length(chunk)),
                );
                Self::Byob {
                    reader,
                    pending: Some(first),
                    spare: Some(Uint8Array::new_with_length(chunk)),
                }
            }
            Err(_) => {
                let mut source = Self::Slices {
                    blob: blob.clone(),
                    step: f64::from(chunk),
                    next: 0.0,
                    pending: None,
                };
                source.read_ahead()?;
                source
            }
        })
    }

    /// Starts the next read if a buffer (or slice) is free for it.
    fn read_ahead(&mut self) -> Result<(), LockerError> {
        match self {
            Self::Byob {
                reader,
                pending,
                spare,
            } => {
                if pending.is_none() {
                    if let Some(buffer) = spare.take() {
                        *pending =
                            Some(JsFuture::from(reader.read_with_array_buffer_view(&buffer)));
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
                    *pending = Some(JsFuture::from(slice.array_buffer()));
                    *next = end;
                }
            }
        }
        Ok(())
    }

    /// The next piece, or `None` at the end.
    async fn next(&mut self) -> Result<Option<Uint8Array>, LockerError> {
        let pending = match self {
            Self::Byob { pending, .. } | Self::Slices { pending, .. } => pending.take(),
        };
        let Some(reading) = pending else {
            return Ok(None);
        };
        let value = reading.await.map_err(read_error)?;
        let piece = match self {
            Self::Byob { .. } => {
                if get(&value, "done").as_bool().unwrap_or(true) {
                    return Ok(None);
                }
                get(&value, "value")
                    .dyn_into::<Uint8Array>()
                    .map_err(|_| LockerError::new(code::HASH_FAILED, "the stream gave no bytes"))?
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

/// Hashes `blob` piece by piece. `progress(bytes_hashed)` is called every few MiB and at the end.
pub async fn hash_blob(
    blob: &Blob,
    chunk: u32,
    mut progress: impl FnMut(f64),
) -> Result<String, LockerError> {
    let size = blob.size();
    let mut state = Sha256State::new();
    let mut buffer = vec![0u8; chunk as usize];
    let mut done = 0.0;
    let mut reported = 0.0;
    let mut source = Source::open(blob, chunk)?;
    while let Some(piece) = source.next().await? {
        let len = piece.length() as usize;
        let Some(dest) = buffer.get_mut(..len) else {
            return Err(LockerError::new(
                code::HASH_FAILED,
                "a piece was larger than asked for",
            ));
        };
        piece.copy_to(dest);
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
    Ok(to_hex(&state.finalize()))
}

/// `hashBlob(blob, {chunkSize, onProgress})`: hashes on the calling thread (page or worker).
/// `hashFile` hashes in a Web Worker instead, which keeps a page responsive; this is for code
/// that already runs in a worker of its own.
#[wasm_bindgen(js_name = hashBlob, unchecked_return_type = "string")]
pub async fn hash_blob_js(
    blob: Blob,
    #[wasm_bindgen(
        unchecked_optional_param_type = "{ chunkSize?: number; onProgress?: (bytes: number) => void }"
    )]
    options: Option<js_sys::Object>,
) -> Result<JsValue, JsValue> {
    let options = JsValue::from(options.unwrap_or_default());
    let chunk = chunk_size(get(&options, "chunkSize").as_f64().map(|c| c as u32))?;
    let on_progress = get(&options, "onProgress").dyn_into::<Function>().ok();
    let digest = hash_blob(&blob, chunk, |done| {
        if let Some(f) = &on_progress {
            // A throwing progress callback must not abort the hash.
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(done));
        }
    })
    .await?;
    Ok(JsValue::from_str(&digest))
}
