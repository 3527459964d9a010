//! Reading a large object back from an S3 server to hash it: ranged GETs side by side, each
//! range hashed in order by the one native digest.
//!
//! Why: one GET is one stream, and its speed is whatever a single connection of the server
//! gives. s3s-fs answers a GET in 4 KiB chunks (about 262,000 per GiB; measured, see
//! BENCHMARKS.md) at about 100-160 MB/s on this machine, and the Worker's digest of that one
//! stream is no faster than reading it (hashing is native and not the cost); four 8 MiB
//! ranges in flight read the same GiB about 1.7-2x as fast. Large S3 servers (AWS, R2) are
//! likewise quicker with several ranged GETs than with one (AWS recommends byte-range fetches
//! for throughput).
//!
//! Memory stays bounded: a range is held (as a JS buffer, never in wasm memory) from its
//! answer until the digest took it, and one isolate holds at most [`RANGE_BUFFERS`] of them
//! over all its requests (a Worker has 128 MB). A read-back that finds the budget taken (a
//! concurrent complete, the batch complete's other items) reads its object as one stream, as
//! before.

use std::cell::Cell;

use futures_util::StreamExt;
use js_sys::Uint8Array;
use locker_core::range::ByteRange;
use locker_core::s3::S3Bucket;
use wasm_bindgen::JsCast;
use worker::crypto::{DigestStream, DigestStreamAlgorithm};
use worker::wasm_bindgen_futures::JsFuture;
use worker::ResponseBody;

use super::{storage_failed, Store};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorKind};

/// Bytes of one ranged GET.
pub(super) const READ_RANGE: u64 = 8 << 20;

/// Range buffers one isolate holds at most, over all its requests: 40 MiB.
const RANGE_BUFFERS: usize = 5;

/// The fewest buffers a ranged read-back is worth taking: two GETs in flight and the range
/// being hashed. With fewer, the object is read as one stream.
const MIN_RANGE_BUFFERS: usize = 3;

/// An object is read back in ranges from this size on; a smaller one in one GET, which costs
/// one round trip instead of several and holds nothing in memory.
pub(super) const RANGED_FROM: u64 = 4 * READ_RANGE;

thread_local! {
    /// The isolate's range buffers not taken. Workers run one thread per isolate, so this is
    /// shared by every request the isolate serves at once.
    static FREE_RANGE_BUFFERS: Cell<usize> = const { Cell::new(RANGE_BUFFERS) };
}

/// Range buffers taken from the isolate's budget, given back when dropped (also when the
/// read-back fails or its request goes away).
#[derive(Debug)]
pub(super) struct RangeBuffers(usize);

impl RangeBuffers {
    /// Every free buffer, if there are at least [`MIN_RANGE_BUFFERS`].
    pub(super) fn take() -> Option<Self> {
        FREE_RANGE_BUFFERS.with(|free| {
            let n = free.get();
            (n >= MIN_RANGE_BUFFERS).then(|| {
                free.set(0);
                Self(n)
            })
        })
    }

    /// Ranged GETs in flight beside the range being hashed.
    fn in_flight(&self) -> usize {
        self.0.saturating_sub(1).max(1)
    }
}

impl Drop for RangeBuffers {
    fn drop(&mut self) {
        FREE_RANGE_BUFFERS.with(|free| free.set(free.get() + self.0));
    }
}

/// The object changed between the HEAD that gave `size` and this read (it went, or another
/// object is at the key): the caller treats it like an object that vanished.
fn changed() -> ApiError {
    ApiError::new(
        ErrorKind::NotUploaded,
        "the stored object changed while it was read",
    )
}

fn broke_off(e: &wasm_bindgen::JsValue) -> ApiError {
    worker::console_error!("storage answer broke off: {e:?}");
    ApiError::new(
        ErrorKind::StorageUnreachable,
        "the storage server's answer broke off",
    )
}

fn digest_failed(e: &wasm_bindgen::JsValue) -> ApiError {
    worker::console_error!("digest stream failed: {e:?}");
    ApiError::new(ErrorKind::Internal, "the runtime's digest failed")
}

/// The SHA-256 of the `size` bytes of the object at `key`, read in ranges of [`READ_RANGE`]
/// with `buffers` bounding how many are held at once.
pub(super) async fn digest_ranges(
    b: &S3Bucket,
    app: &App,
    key: &str,
    size: u64,
    buffers: RangeBuffers,
) -> ApiResult<Vec<u8>> {
    let digest = DigestStream::new(DigestStreamAlgorithm::Sha256);
    let sink: &web_sys::WritableStream = digest.raw().unchecked_ref();
    let writer = sink.get_writer().map_err(|e| digest_failed(&e))?;
    // `buffered` runs up to `in_flight` reads at once and yields them in order: with the one
    // being hashed, at most `buffers.0` ranges are held.
    let mut reads = futures_util::stream::iter(ByteRange::cover(size, READ_RANGE))
        .map(|range| read_range(b, app, key, size, range))
        .buffered(buffers.in_flight());
    while let Some(bytes) = reads.next().await {
        let bytes = bytes?;
        JsFuture::from(writer.write_with_chunk(&bytes))
            .await
            .map_err(|e| digest_failed(&e))?;
    }
    JsFuture::from(writer.close())
        .await
        .map_err(|e| digest_failed(&e))?;
    let sum = digest.digest().await?.to_vec();
    drop(buffers);
    Ok(sum)
}

/// One range of the object, whole, as a JS buffer. Only a 206 of exactly this range of an
/// object of `size` bytes is read: a server that ignored the Range would otherwise put the
/// whole object in memory.
async fn read_range(
    b: &S3Bucket,
    app: &App,
    key: &str,
    size: u64,
    range: ByteRange,
) -> ApiResult<Uint8Array> {
    let response = Store::s3_get(b, app, key, Some(&range.to_string())).await?;
    let stream = match response.body() {
        ResponseBody::Stream(stream) => Some(stream.clone()),
        _ => None,
    };
    let refuse = |e: ApiError| {
        if let Some(stream) = &stream {
            // Not read: let the connection go instead of leaving the body pending.
            let _cancelled = stream.cancel();
        }
        Err(e)
    };
    match response.status_code() {
        206 => {}
        404 | 416 => return refuse(changed()),
        status => return refuse(storage_failed(status, "a ranged GET")),
    }
    let content_range = response.headers().get("content-range")?;
    if content_range.as_deref() != Some(range.content_range(size).as_str()) {
        return refuse(changed());
    }
    let Some(stream) = stream else {
        return Err(changed());
    };
    let body = web_sys::Response::new_with_opt_readable_stream(Some(&stream))
        .and_then(|r| r.array_buffer())
        .map_err(|e| broke_off(&e))?;
    let buffer = JsFuture::from(body).await.map_err(|e| broke_off(&e))?;
    let bytes = Uint8Array::new(&buffer);
    if u64::from(bytes.length()) != range.length() {
        return Err(changed());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free() -> usize {
        FREE_RANGE_BUFFERS.with(Cell::get)
    }

    #[test]
    fn one_ranged_read_back_at_a_time_and_the_budget_comes_back() {
        assert_eq!(free(), RANGE_BUFFERS);
        let first = RangeBuffers::take().unwrap();
        assert_eq!(first.in_flight(), RANGE_BUFFERS - 1);
        assert_eq!(free(), 0);
        // A concurrent read-back finds nothing and reads its object as one stream.
        assert!(RangeBuffers::take().is_none());
        drop(first);
        assert_eq!(free(), RANGE_BUFFERS);
        let again = RangeBuffers::take().unwrap();
        assert_eq!(again.0, RANGE_BUFFERS);
    }

    #[test]
    fn ranged_only_where_it_pays() {
        // At most 40 MiB held, well inside a Worker's 128 MB.
        assert!(RANGE_BUFFERS as u64 * READ_RANGE <= 40 << 20);
        assert!(RANGED_FROM >= MIN_RANGE_BUFFERS as u64 * READ_RANGE);
    }
}
